using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace DeepScaleLM.Native.Cpu;

/// <summary>One unit of parallel work: <see cref="Execute"/> runs once for each index of a <see cref="WorkerPool.For{TJob}"/> call.</summary>
internal interface IParallelJob
{
    /// <summary>Runs work item <paramref name="index"/>; items may run concurrently and in any order.</summary>
    void Execute(int index);
}

/// <summary>
/// A fixed set of worker threads that run a struct job over an index range with the calling thread taking part.
/// Unlike Parallel.For it allocates nothing per call (the job is passed by reference and invoked through a
/// function pointer) and wakes its workers in microseconds, which matters for the many small ops of a training
/// step. Workers spin briefly for the next call, then block, so an idle pool costs no CPU.
/// The caller waits only for workers that joined the call: a worker descheduled by another process never holds
/// up a call whose items the caller could finish alone. A call made while the pool is busy (a nested call, or a
/// second thread) runs serially on its caller.
/// </summary>
internal sealed unsafe class WorkerPool : IDisposable
{
    private const int SpinIterations = 20_000;

    private readonly Thread[] _workers;
    private readonly SemaphoreSlim[] _wake;
    private readonly int[] _sleeping;
    private int _generation;
    private volatile bool _disposed;
    private int _busy;

    // The job of the current call: its address on the caller's stack (the caller waits, so it stays put),
    // the typed trampoline that runs it, and the shared index counter. A worker touches the job only between
    // joining (_active++) and leaving, and only while the call is open; the caller closes the call and then waits
    // for _active to drain, so no worker can reach the job after For returns.
    private void* _job;
    private delegate*<void*, int, void> _invoke;
    private int _count;
    private int _next;
    private int _open;
    private int _active;
    private ExceptionDispatchInfo? _failure;

    /// <summary>A pool that runs jobs on <paramref name="threadCount"/> threads, the caller included.</summary>
    public WorkerPool(int threadCount)
    {
        if (threadCount < 1) throw new ArgumentOutOfRangeException(nameof(threadCount), threadCount, "at least one thread is required");
        ThreadCount = threadCount;
        _workers = new Thread[threadCount - 1];
        _wake = new SemaphoreSlim[threadCount - 1];
        _sleeping = new int[threadCount - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _wake[i] = new SemaphoreSlim(0);
            int worker = i;
            _workers[i] = new Thread(() => WorkerLoop(worker)) { IsBackground = true, Name = $"dslm-cpu-{i + 1}" };
            _workers[i].Start();
        }
    }

    /// <summary>Threads that run a job, the caller included.</summary>
    public int ThreadCount { get; }

    /// <summary>Runs <c>job.Execute(i)</c> for every i in [0, <paramref name="count"/>) and returns when all are done.</summary>
    public void For<TJob>(int count, ref TJob job) where TJob : struct, IParallelJob
    {
        if (count <= 0) return;
        if (count == 1 || _workers.Length == 0 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int i = 0; i < count; i++) job.Execute(i);
            return;
        }
        try
        {
            _job = Unsafe.AsPointer(ref job);
            _invoke = &Invoke<TJob>;
            _count = count;
            _next = 0;
            _failure = null;
            Volatile.Write(ref _open, 1);
            // Full fence: a worker that then marks itself sleeping re-reads the generation and sees this call.
            Interlocked.Increment(ref _generation);
            for (int i = 0; i < _wake.Length; i++)
                if (Volatile.Read(ref _sleeping[i]) == 1) _wake[i].Release();
            RunItems();
            // Close the call (full fence), then wait only for workers that joined before the close.
            Interlocked.Exchange(ref _open, 0);
            var spin = new SpinWait();
            while (Volatile.Read(ref _active) != 0) spin.SpinOnce(sleep1Threshold: -1);
            _failure?.Throw();
        }
        finally
        {
            _job = null;
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>The half-open range [start, end) of part <paramref name="part"/> when <paramref name="total"/> items are split into <paramref name="parts"/> nearly equal parts.</summary>
    public static (int Start, int End) Partition(int part, int parts, int total)
    {
        int baseSize = total / parts, extra = total % parts;
        int start = part * baseSize + Math.Min(part, extra);
        return (start, start + baseSize + (part < extra ? 1 : 0));
    }

    private static void Invoke<TJob>(void* job, int index) where TJob : struct, IParallelJob =>
        Unsafe.AsRef<TJob>(job).Execute(index);

    private void RunItems()
    {
        int i;
        while ((i = Interlocked.Increment(ref _next) - 1) < _count)
        {
            try { _invoke(_job, i); }
            catch (Exception e) { Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null); }
        }
    }

    private void WorkerLoop(int worker)
    {
        int seen = 0;
        while (!_disposed)
        {
            // Spin for the next call first: a training step issues ops back to back.
            for (int s = 0; s < SpinIterations && Volatile.Read(ref _generation) == seen && !_disposed; s++) Thread.SpinWait(8);
            if (Volatile.Read(ref _generation) == seen)
            {
                // Mark sleeping (full fence), re-check, and only then block: a call that starts in between either
                // sees the mark and releases us, or we see its generation here.
                Interlocked.Exchange(ref _sleeping[worker], 1);
                if (Volatile.Read(ref _generation) == seen && !_disposed) _wake[worker].Wait();
                Volatile.Write(ref _sleeping[worker], 0);
                continue;
            }
            seen = Volatile.Read(ref _generation);
            Interlocked.Increment(ref _active);
            if (Volatile.Read(ref _open) == 1) RunItems();
            Interlocked.Decrement(ref _active);
        }
    }

    /// <summary>Stops the worker threads.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var w in _wake) w.Release();
        foreach (var t in _workers) t.Join();
        foreach (var w in _wake) w.Dispose();
    }
}
