using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DeepScaleLM.Native.Cpu;

/// <summary>
/// A GEMM microkernel: <c>C[MR, NR] = alpha * Apanel * Bpanel + beta * C</c> over packed panels, where the A panel
/// holds MR values per k step and the B panel NR values per k step (<see cref="GemmPacking"/> lays them out).
/// With beta = 0 the kernel does not read C.
/// </summary>
internal unsafe interface IGemmKernel
{
    /// <summary>Rows of C per tile.</summary>
    static abstract int MR { get; }
    /// <summary>Columns of C per tile.</summary>
    static abstract int NR { get; }
    /// <summary>Depth of a packed block: the B micro-panel (KC x NR) should sit in L1 while the A block streams from L2.</summary>
    static abstract int KC { get; }
    /// <summary>Most rows of a packed A block (a multiple of MR), sized so the block (MC x KC) stays in L2.</summary>
    static abstract int MC { get; }
    /// <summary>
    /// Whether packing may transpose with AVX-512. Only the AVX-512 kernel sets it; the other families keep the
    /// portable scalar packing, so running every family (as the tests do) covers both packings on one machine.
    /// </summary>
    static abstract bool Avx512Packing { get; }
    /// <summary>Computes one full MR x NR tile of C (row stride <paramref name="ldc"/>) from kc packed steps.</summary>
    static abstract void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta);
}

/// <summary>
/// AVX-512 kernel, 14 x 32: 28 zmm accumulators plus the two B vectors of a step fill 30 of the 32 registers,
/// so a k step is 2 vector loads, 14 broadcast loads (vbroadcastss m32, each feeding its two FMAs; the JIT shares
/// it rather than folding a {1to16} operand into both, which would load it twice) and 28 FMAs, with no spills or
/// bounds checks (checked in the JIT's disassembly). Zen 5 retires 2 FMAs a cycle with 4-cycle latency, so 28
/// independent chains hide the latency; from L1 this kernel runs at about 210 GFLOP/s on one core.
/// A 6 x 64 kernel (24 accumulators, 4 B vectors a step) matched it from L1 but was 25-40% slower in the full
/// two-thread GEMM, where its B micro-panel needs twice the L1 (so half the depth, KC = 128) for the same reuse.
/// </summary>
internal readonly unsafe struct Vector512Kernel : IGemmKernel
{
    public static int MR => 14;
    public static int NR => 32;
    // B micro-panel 256 x 32 floats = 32 KiB of the 48 KiB L1d; A block 504 x 256 floats = 504 KiB of the 1 MiB L2.
    public static int KC => 256;
    public static int MC => 504;
    public static bool Avx512Packing => Avx512F.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default,
            c90 = default, c91 = default, cA0 = default, cA1 = default, cB0 = default, cB1 = default,
            cC0 = default, cC1 = default, cD0 = default, cD1 = default;
        for (int p = 0; p < kc; p++, a += 14, b += 32)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            c00 = Vector512.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c00);
            c01 = Vector512.FusedMultiplyAdd(Vector512.Create(a[0]), b1, c01);
            c10 = Vector512.FusedMultiplyAdd(Vector512.Create(a[1]), b0, c10);
            c11 = Vector512.FusedMultiplyAdd(Vector512.Create(a[1]), b1, c11);
            c20 = Vector512.FusedMultiplyAdd(Vector512.Create(a[2]), b0, c20);
            c21 = Vector512.FusedMultiplyAdd(Vector512.Create(a[2]), b1, c21);
            c30 = Vector512.FusedMultiplyAdd(Vector512.Create(a[3]), b0, c30);
            c31 = Vector512.FusedMultiplyAdd(Vector512.Create(a[3]), b1, c31);
            c40 = Vector512.FusedMultiplyAdd(Vector512.Create(a[4]), b0, c40);
            c41 = Vector512.FusedMultiplyAdd(Vector512.Create(a[4]), b1, c41);
            c50 = Vector512.FusedMultiplyAdd(Vector512.Create(a[5]), b0, c50);
            c51 = Vector512.FusedMultiplyAdd(Vector512.Create(a[5]), b1, c51);
            c60 = Vector512.FusedMultiplyAdd(Vector512.Create(a[6]), b0, c60);
            c61 = Vector512.FusedMultiplyAdd(Vector512.Create(a[6]), b1, c61);
            c70 = Vector512.FusedMultiplyAdd(Vector512.Create(a[7]), b0, c70);
            c71 = Vector512.FusedMultiplyAdd(Vector512.Create(a[7]), b1, c71);
            c80 = Vector512.FusedMultiplyAdd(Vector512.Create(a[8]), b0, c80);
            c81 = Vector512.FusedMultiplyAdd(Vector512.Create(a[8]), b1, c81);
            c90 = Vector512.FusedMultiplyAdd(Vector512.Create(a[9]), b0, c90);
            c91 = Vector512.FusedMultiplyAdd(Vector512.Create(a[9]), b1, c91);
            cA0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[10]), b0, cA0);
            cA1 = Vector512.FusedMultiplyAdd(Vector512.Create(a[10]), b1, cA1);
            cB0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[11]), b0, cB0);
            cB1 = Vector512.FusedMultiplyAdd(Vector512.Create(a[11]), b1, cB1);
            cC0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[12]), b0, cC0);
            cC1 = Vector512.FusedMultiplyAdd(Vector512.Create(a[12]), b1, cC1);
            cD0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[13]), b0, cD0);
            cD1 = Vector512.FusedMultiplyAdd(Vector512.Create(a[13]), b1, cD1);
        }
        var va = Vector512.Create(alpha);
        var vb = Vector512.Create(beta);
        bool read = beta != 0f;
        Store(c, c00, c01, va, vb, read); c += ldc;
        Store(c, c10, c11, va, vb, read); c += ldc;
        Store(c, c20, c21, va, vb, read); c += ldc;
        Store(c, c30, c31, va, vb, read); c += ldc;
        Store(c, c40, c41, va, vb, read); c += ldc;
        Store(c, c50, c51, va, vb, read); c += ldc;
        Store(c, c60, c61, va, vb, read); c += ldc;
        Store(c, c70, c71, va, vb, read); c += ldc;
        Store(c, c80, c81, va, vb, read); c += ldc;
        Store(c, c90, c91, va, vb, read); c += ldc;
        Store(c, cA0, cA1, va, vb, read); c += ldc;
        Store(c, cB0, cB1, va, vb, read); c += ldc;
        Store(c, cC0, cC1, va, vb, read); c += ldc;
        Store(c, cD0, cD1, va, vb, read);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> lo, Vector512<float> hi, Vector512<float> alpha, Vector512<float> beta, bool read)
    {
        if (read)
        {
            lo = Vector512.FusedMultiplyAdd(lo, alpha, beta * Vector512.Load(c));
            hi = Vector512.FusedMultiplyAdd(hi, alpha, beta * Vector512.Load(c + 16));
        }
        else
        {
            lo *= alpha;
            hi *= alpha;
        }
        lo.Store(c);
        hi.Store(c + 16);
    }
}

/// <summary>
/// 256-bit kernel, 6 x 16, for machines without AVX-512: 12 ymm accumulators plus two B vectors and a broadcast
/// fit the 16 AVX2 registers.
/// </summary>
internal readonly unsafe struct Vector256Kernel : IGemmKernel
{
    public static int MR => 6;
    public static int NR => 16;
    // B micro-panel 256 x 16 floats = 16 KiB (fits a 32 KiB L1d); A block 252 x 256 floats = 252 KiB of L2.
    public static int KC => 256;
    public static int MC => 252;
    public static bool Avx512Packing => false;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++, a += 6, b += 16)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var ai = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(ai, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(ai, b1, c01);
            ai = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(ai, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(ai, b1, c11);
            ai = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(ai, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(ai, b1, c21);
            ai = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(ai, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(ai, b1, c31);
            ai = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(ai, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(ai, b1, c41);
            ai = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(ai, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(ai, b1, c51);
        }
        var va = Vector256.Create(alpha);
        var vb = Vector256.Create(beta);
        bool read = beta != 0f;
        Store(c, c00, c01, va, vb, read); c += ldc;
        Store(c, c10, c11, va, vb, read); c += ldc;
        Store(c, c20, c21, va, vb, read); c += ldc;
        Store(c, c30, c31, va, vb, read); c += ldc;
        Store(c, c40, c41, va, vb, read); c += ldc;
        Store(c, c50, c51, va, vb, read);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector256<float> lo, Vector256<float> hi, Vector256<float> alpha, Vector256<float> beta, bool read)
    {
        if (read)
        {
            lo = Vector256.FusedMultiplyAdd(lo, alpha, beta * Vector256.Load(c));
            hi = Vector256.FusedMultiplyAdd(hi, alpha, beta * Vector256.Load(c + 8));
        }
        else
        {
            lo *= alpha;
            hi *= alpha;
        }
        lo.Store(c);
        hi.Store(c + 8);
    }
}

/// <summary>Scalar 4 x 4 kernel: the correctness fallback where no vector width is accelerated.</summary>
internal readonly unsafe struct ScalarKernel : IGemmKernel
{
    public static int MR => 4;
    public static int NR => 4;
    public static int KC => 256;
    public static int MC => 128;
    public static bool Avx512Packing => false;

    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        float* acc = stackalloc float[16];
        new Span<float>(acc, 16).Clear();
        for (int p = 0; p < kc; p++, a += 4, b += 4)
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 4; j++)
                    acc[r * 4 + j] += a[r] * b[j];
        for (int r = 0; r < 4; r++, c += ldc)
            for (int j = 0; j < 4; j++)
                c[j] = beta == 0f ? alpha * acc[r * 4 + j] : alpha * acc[r * 4 + j] + beta * c[j];
    }
}
