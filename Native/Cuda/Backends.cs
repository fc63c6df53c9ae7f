using DeepScaleLM.Native.Cpu;

namespace DeepScaleLM.Native.Cuda;

/// <summary>Makes the backend a <see cref="Device"/> names (parse <c>--device cpu|cuda[:N]</c> with <see cref="Device.Parse"/>).</summary>
public static class Backends
{
    /// <summary>The backend for <paramref name="device"/>, or false and the reason it cannot be had (e.g. "no CUDA device: ...").</summary>
    /// <param name="device">cpu or cuda:N.</param>
    /// <param name="backend">The backend, or null.</param>
    /// <param name="reason">Null on success, else why the device cannot be used.</param>
    /// <param name="threads">CPU threads (CPU only; default every core).</param>
    /// <param name="allowTf32">Let CUDA matrix products use TF32 (CUDA only; see <see cref="CudaBackend.AllowTf32"/>).</param>
    public static bool TryCreate(Device device, out Backend? backend, out string? reason, int? threads = null, bool allowTf32 = false)
    {
        if (device.Kind == DeviceKind.Cpu)
        {
            backend = new CpuBackend(threads);
            reason = null;
            return true;
        }
        bool created = CudaBackend.TryCreate(device.Index, out var cuda, out reason, allowTf32);
        backend = cuda;
        return created;
    }

    /// <summary>The backend for <paramref name="device"/>.</summary>
    /// <exception cref="InvalidOperationException">The device cannot be used; the message says why.</exception>
    public static Backend Create(Device device, int? threads = null, bool allowTf32 = false) =>
        TryCreate(device, out var backend, out var reason, threads, allowTf32) ? backend! : throw new InvalidOperationException(reason);
}
