using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native.Cuda;

/// <summary>
/// The argument values of one kernel launch, held inline (no allocation): each argument sits in its own 8-byte
/// slot, little-endian, so the driver reads a 4-byte <c>int</c> or <c>float</c> parameter from the slot's first
/// bytes and an 8-byte pointer, <c>long long</c> or <c>double</c> from all of it. Add them in the kernel's parameter order.
/// </summary>
internal struct KernelArguments
{
    public const int Capacity = 16;
    private Slots _values;

    /// <summary>Arguments added so far.</summary>
    public int Count { get; private set; }

    /// <summary>The filled slots of <paramref name="arguments"/>, for the launch to point at.</summary>
    public static Span<ulong> Values(ref KernelArguments arguments) => ((Span<ulong>)arguments._values)[..arguments.Count];

    /// <summary>A device pointer (0 for a null optional operand) or an unsigned 64-bit value.</summary>
    public KernelArguments With(ulong value)
    {
        if (Count == Capacity) throw new InvalidOperationException($"a kernel launch takes at most {Capacity} arguments");
        _values[Count++] = value;
        return this;
    }

    /// <summary>A <c>long long</c>.</summary>
    public KernelArguments With(long value) => With((ulong)value);

    /// <summary>An <c>int</c>.</summary>
    public KernelArguments With(int value) => With((ulong)(uint)value);

    /// <summary>An <c>unsigned int</c>.</summary>
    public KernelArguments With(uint value) => With((ulong)value);

    /// <summary>A <c>float</c>.</summary>
    public KernelArguments With(float value) => With((ulong)BitConverter.SingleToUInt32Bits(value));

    [InlineArray(Capacity)]
    private struct Slots
    {
        private ulong _element;
    }
}
