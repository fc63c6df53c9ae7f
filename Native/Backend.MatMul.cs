namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// <c>output = alpha * op(a) * op(b) + beta * output (+ bias)</c>, over a batch of matrices.
    /// </summary>
    /// <param name="output">[m, n] or [batch, m, n]. With <paramref name="beta"/> = 0 its old values are not read.</param>
    /// <param name="a">[m, k] (or [k, m] when <paramref name="transposeA"/>), optionally with a leading batch
    /// dimension; a rank-2 operand is shared by every batch entry (stride 0).</param>
    /// <param name="b">[k, n] (or [n, k] when <paramref name="transposeB"/>), batched like <paramref name="a"/>.
    /// A PyTorch Linear layer is <c>MatMul(y, x, weight, transposeB: true, bias: b)</c> with weight [out, in].</param>
    /// <param name="transposeA">Use a's transpose.</param>
    /// <param name="transposeB">Use b's transpose.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="beta">Scale of the old output.</param>
    /// <param name="bias">Optional [n], added to every row (not scaled by alpha).</param>
    /// <exception cref="ArgumentException">Shapes do not agree, an operand is on another device, or alpha/beta is not finite.</exception>
    public void MatMul(Tensor output, Tensor a, Tensor b, bool transposeA = false, bool transposeB = false,
        float alpha = 1f, float beta = 0f, Tensor? bias = null)
    {
        Check.Operand(this, output, nameof(output));
        Check.Operand(this, a, nameof(a));
        Check.Operand(this, b, nameof(b));
        Check.Optional(this, bias, nameof(bias));
        var shape = MatMulShape.Of(a, b, transposeA, transposeB);
        shape.RequireFinite(alpha, nameof(alpha));
        shape.RequireFinite(beta, nameof(beta));
        shape.RequireOutputShape(output, nameof(output));
        if (bias is not null) shape.Require(bias, nameof(bias), shape.N);
        Check.Disjoint(output, nameof(output), a, nameof(a));
        Check.Disjoint(output, nameof(output), b, nameof(b));
        if (bias is not null) Check.Disjoint(output, nameof(output), bias, nameof(bias));
        MatMulCore(output, a, b, transposeA, transposeB, alpha, beta, bias);
        KeepAlive(output, a, b, bias);
    }

    /// <summary>
    /// Backward of <see cref="MatMul"/> (with its beta = 0): accumulates <c>gradA += d(alpha*op(a)op(b))/da</c>,
    /// likewise gradB, and <c>gradBias += column sums of gradOutput</c>. A shared rank-2 operand's gradient is
    /// summed over the batch.
    /// </summary>
    /// <param name="gradA">Shaped like <paramref name="a"/>, or null to skip.</param>
    /// <param name="gradB">Shaped like <paramref name="b"/>, or null to skip.</param>
    /// <param name="gradBias">[n], or null to skip.</param>
    /// <param name="gradOutput">Shaped like the forward output.</param>
    /// <param name="a">The forward's a.</param>
    /// <param name="b">The forward's b.</param>
    /// <param name="transposeA">As in the forward.</param>
    /// <param name="transposeB">As in the forward.</param>
    /// <param name="alpha">As in the forward.</param>
    /// <exception cref="ArgumentException">Shapes do not agree with the forward's.</exception>
    public void MatMulBackward(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b,
        bool transposeA = false, bool transposeB = false, float alpha = 1f)
    {
        Check.Operand(this, gradOutput, nameof(gradOutput));
        Check.Operand(this, a, nameof(a));
        Check.Operand(this, b, nameof(b));
        Check.Optional(this, gradA, nameof(gradA));
        Check.Optional(this, gradB, nameof(gradB));
        Check.Optional(this, gradBias, nameof(gradBias));
        var shape = MatMulShape.Of(a, b, transposeA, transposeB);
        shape.RequireFinite(alpha, nameof(alpha));
        shape.RequireOutputShape(gradOutput, nameof(gradOutput));
        if (gradA is not null) Check.SameShape(gradA, nameof(gradA), a, nameof(a));
        if (gradB is not null) Check.SameShape(gradB, nameof(gradB), b, nameof(b));
        if (gradBias is not null) shape.Require(gradBias, nameof(gradBias), shape.N);
        // The gradients are written while all six operands are still read: none may overlap another.
        ReadOnlySpan<(Tensor? Tensor, string Name)> operands = [(gradA, nameof(gradA)), (gradB, nameof(gradB)),
            (gradBias, nameof(gradBias)), (gradOutput, nameof(gradOutput)), (a, nameof(a)), (b, nameof(b))];
        for (int i = 0; i < 3; i++)
            for (int j = i + 1; j < operands.Length; j++)
                if (operands[i].Tensor is { } written && operands[j].Tensor is { } other)
                    Check.Disjoint(written, operands[i].Name, other, operands[j].Name);
        MatMulBackwardCore(gradA, gradB, gradBias, gradOutput, a, b, transposeA, transposeB, alpha);
        KeepAlive(gradA, gradB, gradBias, gradOutput, a, b);
    }

    /// <summary>Kernel of <see cref="MatMul"/>; operands already validated.</summary>
    protected abstract void MatMulCore(Tensor output, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha, float beta, Tensor? bias);
    /// <summary>Kernel of <see cref="MatMulBackward"/>; operands already validated.</summary>
    protected abstract void MatMulBackwardCore(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha);
}

/// <summary>
/// The dimensions of a (batched) matrix product <c>op(a) [m, k] * op(b) [k, n]</c>, read from its operands'
/// shapes. <see cref="Of"/> and <see cref="Require"/> reject operands that do not agree with an
/// <see cref="ArgumentException"/> naming the operand and every shape involved; they allocate only to throw.
/// </summary>
internal readonly struct MatMulShape
{
    private readonly Tensor _a, _b;
    private readonly bool _transposeA, _transposeB;

    private MatMulShape(Tensor a, Tensor b, bool transposeA, bool transposeB)
    {
        (_a, _b, _transposeA, _transposeB) = (a, b, transposeA, transposeB);
        M = transposeA ? a.Shape[-1] : a.Shape[-2];
        K = transposeA ? a.Shape[-2] : a.Shape[-1];
        N = transposeB ? b.Shape[-2] : b.Shape[-1];
        Batched = a.Rank == 3 || b.Rank == 3;
        Batch = a.Rank == 3 ? a.Shape[0] : b.Rank == 3 ? b.Shape[0] : 1;
    }

    /// <summary>Matrices in the batch (1 without a batch dimension).</summary>
    public int Batch { get; }
    /// <summary>Rows of op(a) and of the output.</summary>
    public int M { get; }
    /// <summary>Columns of op(b) and of the output.</summary>
    public int N { get; }
    /// <summary>The inner (summed) dimension.</summary>
    public int K { get; }
    /// <summary>Whether either operand, and so the output, has a leading batch dimension.</summary>
    public bool Batched { get; }

    /// <summary>The operands, as error messages show them.</summary>
    private string Context =>
        $"a {_a.Shape}, transposeA {(_transposeA ? "true" : "false")}, b {_b.Shape}, transposeB {(_transposeB ? "true" : "false")}";

    /// <summary>The product's dimensions.</summary>
    /// <exception cref="ArgumentException">A rank is not 2 or 3, the inner dimensions differ, or the batch sizes differ.</exception>
    public static MatMulShape Of(Tensor a, Tensor b, bool transposeA, bool transposeB)
    {
        Check.Rank(a, nameof(a), 2, 3);
        Check.Rank(b, nameof(b), 2, 3);
        var shape = new MatMulShape(a, b, transposeA, transposeB);
        int inner = transposeB ? b.Shape[-1] : b.Shape[-2];
        if (inner != shape.K)
            throw new ArgumentException(
                $"operand 'b' has shape {b.Shape} but its inner dimension {inner} must equal a's inner dimension {shape.K} ({shape.Context})", nameof(b));
        if (a.Rank == 3 && b.Rank == 3 && a.Shape[0] != b.Shape[0])
            throw new ArgumentException(
                $"operand 'b' has shape {b.Shape} but its batch size {b.Shape[0]} must equal a's {a.Shape[0]} (or b must be rank 2 to be shared) ({shape.Context})", nameof(b));
        return shape;
    }

    /// <summary>The scale is a finite number.</summary>
    public void RequireFinite(float value, string name)
    {
        if (!float.IsFinite(value)) throw new ArgumentException($"'{name}' must be finite but is {value} ({Context})", name);
    }

    /// <summary>The tensor is shaped like the output: [batch, m, n] when batched, else [m, n].</summary>
    public void RequireOutputShape(Tensor tensor, string name)
    {
        if (Batched) Require(tensor, name, [Batch, M, N]);
        else Require(tensor, name, [M, N]);
    }

    /// <summary>The tensor has exactly the dimensions <paramref name="expected"/>.</summary>
    public void Require(Tensor tensor, string name, params ReadOnlySpan<int> expected)
    {
        Check.Shape(tensor, name, expected, $"{Context}");
    }
}
