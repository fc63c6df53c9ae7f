using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DeepScaleLM.Native.Cpu;

/// <summary>
/// One SIMD width as zero-size structs with static abstract members: the vector operations the CPU kernels use,
/// on float32 lanes (<typeparamref name="TFloat"/>) and the float64 lanes they widen to (<typeparamref name="TDouble"/>).
/// Every kernel is written once, generic over the width, and the JIT compiles it per width with every member
/// inlined: <see cref="Width512"/> where 512-bit vectors are accelerated, <see cref="Width256"/> elsewhere.
/// </summary>
/// <remarks>
/// Why not Vector512 alone: where it is not accelerated the runtime falls back to out-of-line software calls,
/// and a GeLU measured 50 times slower under <c>DOTNET_EnableAVX512=0</c> than with native 256-bit code.
/// </remarks>
internal unsafe interface IWidth<TFloat, TDouble>
{
    /// <summary>float32 lanes per vector (twice the float64 lanes).</summary>
    static abstract int Lanes { get; }

    static abstract TFloat Load(float* source);
    static abstract void Store(TFloat value, float* destination);
    static abstract TDouble Load(double* source);
    static abstract void Store(TDouble value, double* destination);

    /// <summary>The first <paramref name="count"/> (&lt; Lanes) floats at <paramref name="source"/>, zero-padded.</summary>
    static abstract TFloat LoadTail(float* source, int count);
    /// <summary>Stores the first <paramref name="count"/> (&lt; Lanes) lanes.</summary>
    static abstract void StoreTail(TFloat value, float* destination, int count);
    /// <summary>All-ones in the first <paramref name="count"/> lanes, zero in the rest.</summary>
    static abstract TFloat FirstLanes(int count);
    /// <summary><see cref="FirstLanes"/> for the float64 lanes the float32 ones widen to (widening the float32 mask would not keep all bits set).</summary>
    static abstract (TDouble Lower, TDouble Upper) FirstLanesWide(int count);

    static abstract TFloat Broadcast(float value);
    static abstract TFloat Add(TFloat a, TFloat b);
    static abstract TFloat Subtract(TFloat a, TFloat b);
    static abstract TFloat Multiply(TFloat a, TFloat b);
    static abstract TFloat Divide(TFloat a, TFloat b);
    /// <summary>a * b + c, rounded once.</summary>
    static abstract TFloat Fma(TFloat a, TFloat b, TFloat c);
    static abstract TFloat And(TFloat a, TFloat b);
    /// <summary>IEEE maximum: NaN if either is NaN.</summary>
    static abstract TFloat Max(TFloat a, TFloat b);
    static abstract TFloat Sqrt(TFloat x);
    /// <summary>Round to nearest integer, ties to even.</summary>
    static abstract TFloat Round(TFloat x);
    /// <summary>x * 2^n for integral n in [-252, 254]: two exact multiplications by normal powers of two built in the exponent field.</summary>
    static abstract TFloat ScaleByPowerOf2(TFloat x, TFloat n);
    static abstract TFloat GreaterThan(TFloat a, TFloat b);
    static abstract TFloat GreaterThanOrEqual(TFloat a, TFloat b);
    static abstract TFloat LessThan(TFloat a, TFloat b);
    /// <summary>Lanes of <paramref name="a"/> where <paramref name="mask"/> is all-ones, else of <paramref name="b"/>.</summary>
    static abstract TFloat Select(TFloat mask, TFloat a, TFloat b);
    /// <summary>Sum of the lanes, in a fixed order.</summary>
    static abstract float Sum(TFloat x);

    static abstract TDouble Broadcast(double value);
    static abstract TDouble Add(TDouble a, TDouble b);
    static abstract TDouble Subtract(TDouble a, TDouble b);
    static abstract TDouble Multiply(TDouble a, TDouble b);
    static abstract TDouble Divide(TDouble a, TDouble b);
    static abstract TDouble Fma(TDouble a, TDouble b, TDouble c);
    static abstract TDouble And(TDouble a, TDouble b);
    static abstract TDouble Abs(TDouble x);
    /// <summary>The runtime's float64 e^x: within 1 ulp, so within 0.5 float32 ulp once narrowed.</summary>
    static abstract TDouble Exp(TDouble x);
    static abstract TDouble GreaterThanOrEqual(TDouble a, TDouble b);
    static abstract TDouble Select(TDouble mask, TDouble a, TDouble b);
    /// <summary>Sum of the lanes, in a fixed order.</summary>
    static abstract double Sum(TDouble x);

    /// <summary>The float32 lanes as float64: lower half, upper half (exact).</summary>
    static abstract (TDouble Lower, TDouble Upper) Widen(TFloat x);
    /// <summary>Two float64 vectors rounded to one float32 vector.</summary>
    static abstract TFloat Narrow(TDouble lower, TDouble upper);

    /// <summary>
    /// Dropout masks of the 2 * Lanes elements from element 4 * <paramref name="firstBlock"/> of Philox stream
    /// (seed, offset): all-ones where the word is &gt;= <paramref name="threshold"/> (see <see cref="Philox.KeepThreshold"/>).
    /// </summary>
    static abstract (TFloat First, TFloat Second) KeepMasks(ulong seed, ulong offset, ulong firstBlock, uint threshold);
}

/// <summary>16 float32 lanes: AVX-512.</summary>
internal readonly unsafe struct Width512 : IWidth<Vector512<float>, Vector512<double>>
{
    public static int Lanes => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* source) => Vector512.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Load(double* source) => Vector512.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<double> value, double* destination) => value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadTail(float* source, int count)
    {
        var v = Vector512<float>.Zero;
        Buffer.MemoryCopy(source, &v, sizeof(Vector512<float>), count * sizeof(float));
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTail(Vector512<float> value, float* destination, int count) =>
        Buffer.MemoryCopy(&value, destination, count * sizeof(float), count * sizeof(float));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FirstLanes(int count) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector512<double> Lower, Vector512<double> Upper) FirstLanesWide(int count)
    {
        var (lower, upper) = Vector512.Widen(Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)));
        return (lower.AsDouble(), upper.AsDouble());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float value) => Vector512.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> And(Vector512<float> a, Vector512<float> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sqrt(Vector512<float> x) => Vector512.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Round(Vector512<float> x) => Vector512.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ScaleByPowerOf2(Vector512<float> x, Vector512<float> n)
    {
        var k = Vector512.ConvertToInt32(n);
        var half = Vector512.ShiftRightArithmetic(k, 1);
        return x * ((half + Vector512.Create(127)) << 23).AsSingle() * ((k - half + Vector512.Create(127)) << 23).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> GreaterThan(Vector512<float> a, Vector512<float> b) => Vector512.GreaterThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> GreaterThanOrEqual(Vector512<float> a, Vector512<float> b) => Vector512.GreaterThanOrEqual(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LessThan(Vector512<float> a, Vector512<float> b) => Vector512.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Select(Vector512<float> mask, Vector512<float> a, Vector512<float> b) => Vector512.ConditionalSelect(mask, a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Broadcast(double value) => Vector512.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Add(Vector512<double> a, Vector512<double> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Subtract(Vector512<double> a, Vector512<double> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Multiply(Vector512<double> a, Vector512<double> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Divide(Vector512<double> a, Vector512<double> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Fma(Vector512<double> a, Vector512<double> b, Vector512<double> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> And(Vector512<double> a, Vector512<double> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Abs(Vector512<double> x) => Vector512.Abs(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Exp(Vector512<double> x) => Vector512.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> GreaterThanOrEqual(Vector512<double> a, Vector512<double> b) => Vector512.GreaterThanOrEqual(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<double> Select(Vector512<double> mask, Vector512<double> a, Vector512<double> b) => Vector512.ConditionalSelect(mask, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> x) => Vector512.Sum(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double Sum(Vector512<double> x) => Vector512.Sum(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static (Vector512<double> Lower, Vector512<double> Upper) Widen(Vector512<float> x) => Vector512.Widen(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Narrow(Vector512<double> lower, Vector512<double> upper) => Vector512.Narrow(lower, upper);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector512<float> First, Vector512<float> Second) KeepMasks(ulong seed, ulong offset, ulong firstBlock, uint threshold)
    {
        // 512-bit vectors are accelerated only with AVX-512, which Philox.Words32 needs.
        var (first, second) = Philox.Words32(seed, offset, firstBlock);
        var bound = Vector512.Create(threshold);
        return (Vector512.GreaterThanOrEqual(first, bound).AsSingle(), Vector512.GreaterThanOrEqual(second, bound).AsSingle());
    }
}

/// <summary>8 float32 lanes: AVX2, or any hardware without 512-bit vectors.</summary>
internal readonly unsafe struct Width256 : IWidth<Vector256<float>, Vector256<double>>
{
    public static int Lanes => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* source) => Vector256.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Load(double* source) => Vector256.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<double> value, double* destination) => value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadTail(float* source, int count)
    {
        var v = Vector256<float>.Zero;
        Buffer.MemoryCopy(source, &v, sizeof(Vector256<float>), count * sizeof(float));
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTail(Vector256<float> value, float* destination, int count) =>
        Buffer.MemoryCopy(&value, destination, count * sizeof(float), count * sizeof(float));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FirstLanes(int count) => Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<double> Lower, Vector256<double> Upper) FirstLanesWide(int count)
    {
        var (lower, upper) = Vector256.Widen(Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)));
        return (lower.AsDouble(), upper.AsDouble());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float value) => Vector256.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> And(Vector256<float> a, Vector256<float> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sqrt(Vector256<float> x) => Vector256.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round(Vector256<float> x) => Vector256.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ScaleByPowerOf2(Vector256<float> x, Vector256<float> n)
    {
        var k = Vector256.ConvertToInt32(n);
        var half = Vector256.ShiftRightArithmetic(k, 1);
        return x * ((half + Vector256.Create(127)) << 23).AsSingle() * ((k - half + Vector256.Create(127)) << 23).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> GreaterThan(Vector256<float> a, Vector256<float> b) => Vector256.GreaterThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> GreaterThanOrEqual(Vector256<float> a, Vector256<float> b) => Vector256.GreaterThanOrEqual(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LessThan(Vector256<float> a, Vector256<float> b) => Vector256.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Select(Vector256<float> mask, Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(mask, a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Broadcast(double value) => Vector256.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Add(Vector256<double> a, Vector256<double> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Subtract(Vector256<double> a, Vector256<double> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Multiply(Vector256<double> a, Vector256<double> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Divide(Vector256<double> a, Vector256<double> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Fma(Vector256<double> a, Vector256<double> b, Vector256<double> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> And(Vector256<double> a, Vector256<double> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Abs(Vector256<double> x) => Vector256.Abs(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Exp(Vector256<double> x) => Vector256.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> GreaterThanOrEqual(Vector256<double> a, Vector256<double> b) => Vector256.GreaterThanOrEqual(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<double> Select(Vector256<double> mask, Vector256<double> a, Vector256<double> b) => Vector256.ConditionalSelect(mask, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> x) => Vector256.Sum(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double Sum(Vector256<double> x) => Vector256.Sum(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static (Vector256<double> Lower, Vector256<double> Upper) Widen(Vector256<float> x) => Vector256.Widen(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Narrow(Vector256<double> lower, Vector256<double> upper) => Vector256.Narrow(lower, upper);

    /// <summary>Four Philox blocks one by one (no 64-bit-lane multiply to borrow at this width on every CPU).</summary>
    public static (Vector256<float> First, Vector256<float> Second) KeepMasks(ulong seed, ulong offset, ulong firstBlock, uint threshold)
    {
        Span<uint> words = stackalloc uint[16];
        Philox.Words(words, seed, offset, firstBlock);
        var bound = Vector256.Create(threshold);
        return (Vector256.GreaterThanOrEqual(Vector256.Create<uint>(words), bound).AsSingle(),
            Vector256.GreaterThanOrEqual(Vector256.Create<uint>(words[8..]), bound).AsSingle());
    }
}
