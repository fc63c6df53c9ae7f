using System.Diagnostics;
using DeepScaleLM.Interop;
using DeepScaleLM.Native.Cuda;

namespace DeepScaleLM.Native.Profiling;

/// <summary>
/// Measures how long each op call takes on its device. <see cref="Start"/> and <see cref="Stop"/> bracket one call;
/// <see cref="Collect"/> adds the finished calls' seconds to per-op totals, waiting for the device if it must. Nothing
/// is allocated per call once the timer has seen as many calls between two collections as it will see.
/// </summary>
internal abstract class OpTimer : IDisposable
{
    /// <summary>How the time is measured, for the report.</summary>
    public abstract string Method { get; }

    /// <summary>Marks the start of a call of <paramref name="op"/>.</summary>
    public abstract void Start(ProfiledOp op);

    /// <summary>Marks the end of the call <see cref="Start"/> began.</summary>
    public abstract void Stop();

    /// <summary>Adds the seconds of every call stopped since the last collection to <paramref name="seconds"/> (indexed by
    /// <see cref="ProfiledOp"/>).</summary>
    public abstract void Collect(Span<double> seconds);

    /// <summary>Forgets calls not yet collected.</summary>
    public abstract void Discard();

    /// <summary>The timer for <paramref name="backend"/>: CUDA events on a GPU's stream, else a stopwatch.</summary>
    public static OpTimer For(Backend backend) => backend is CudaBackend cuda ? new CudaEventTimer(cuda) : new StopwatchTimer();

    /// <inheritdoc/>
    public virtual void Dispose() { }
}

/// <summary>Host clock around each call: exact for a backend whose ops finish before they return (the CPU backend).</summary>
internal sealed class StopwatchTimer : OpTimer
{
    private readonly double[] _pending = new double[Enum.GetValues<ProfiledOp>().Length];
    private ProfiledOp _op;
    private long _start;

    public override string Method => "stopwatch per call (the ops are synchronous)";

    public override void Start(ProfiledOp op)
    {
        _op = op;
        _start = Stopwatch.GetTimestamp();
    }

    public override void Stop() => _pending[(int)_op] += Stopwatch.GetElapsedTime(_start).TotalSeconds;

    public override void Collect(Span<double> seconds)
    {
        for (int i = 0; i < _pending.Length; i++) seconds[i] += _pending[i];
        Discard();
    }

    public override void Discard() => Array.Clear(_pending);
}

/// <summary>
/// A pair of CUDA events recorded on the backend's stream around each call: the GPU time between them, read with
/// <c>cuEventElapsedTime</c> only at <see cref="Collect"/> (one wait for the last event), so the host never waits
/// inside a step. The event pool grows to the most calls seen between two collections and is then reused.
/// </summary>
/// <remarks>Unverified on a GPU (none was available when this was written); see docs/profiling.md.</remarks>
internal sealed class CudaEventTimer(CudaBackend backend) : OpTimer
{
    private readonly List<EventHandle> _events = [];
    private ProfiledOp[] _ops = new ProfiledOp[256];
    private int _recorded;

    public override string Method => "CUDA events on the backend's stream, read after a synchronize";

    public override void Start(ProfiledOp op)
    {
        backend.Bind();
        if (2 * _recorded + 2 > _events.Count) Grow();
        _ops[_recorded] = op;
        Record(_events[2 * _recorded]);
    }

    public override void Stop()
    {
        Record(_events[2 * _recorded + 1]);
        _recorded++;
    }

    public override void Collect(Span<double> seconds)
    {
        if (_recorded == 0) return;
        backend.Bind();
        var last = _events[2 * _recorded - 1].DangerousGetHandle();
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuEventSynchronize(last), nameof(CudaDriver.cuEventSynchronize));
        for (int call = 0; call < _recorded; call++)
        {
            nint start = _events[2 * call].DangerousGetHandle(), stop = _events[2 * call + 1].DangerousGetHandle();
            CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuEventElapsedTime(out float milliseconds, start, stop), nameof(CudaDriver.cuEventElapsedTime));
            seconds[(int)_ops[call]] += milliseconds / 1e3;
        }
        _recorded = 0;
    }

    public override void Discard()
    {
        // Events still queued on the stream may be recorded again only after they completed.
        if (_recorded > 0) backend.Synchronize();
        _recorded = 0;
    }

    public override void Dispose()
    {
        backend.Bind();
        foreach (var handle in _events) handle.Dispose();
        _events.Clear();
    }

    private void Record(EventHandle handle) =>
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuEventRecord(handle.DangerousGetHandle(), backend.Stream), nameof(CudaDriver.cuEventRecord));

    /// <summary>Doubles the pool (at least one pair more), creating the events in the backend's context.</summary>
    private void Grow()
    {
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuCtxGetCurrent(out nint context), nameof(CudaDriver.cuCtxGetCurrent));
        int target = Math.Max(2 * _events.Count, 2 * _recorded + 2);
        while (_events.Count < target)
        {
            CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuEventCreate(out nint created, CudaDriver.EventDefault), nameof(CudaDriver.cuEventCreate));
            _events.Add(new EventHandle(created, context));
        }
        if (_ops.Length < target / 2) Array.Resize(ref _ops, target);
    }
}
