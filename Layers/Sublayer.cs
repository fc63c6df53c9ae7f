using DeepScaleLM.Native;

namespace DeepScaleLM.Layers;

/// <summary>
/// The dropout of one forward pass: its probability (0 when not training) and the Philox key. Every dropout site of
/// the model has a fixed index; the stream it draws from is offset = step offset * sites + site, so sites never
/// share a mask within a step or across steps, and a recomputation redraws exactly the forward's masks.
/// </summary>
internal readonly record struct DropoutStep(float Probability, ulong Seed, ulong StepOffset, int Sites)
{
    /// <summary>The Philox offset of one site.</summary>
    public ulong Offset(int site) => unchecked(StepOffset * (ulong)Sites + (ulong)site);
}

/// <summary>
/// One residual sublayer around a branch f (dslm-theory.md 2.9):
/// Pre: out = lam x + beta drop(f(LN(x))); Post: out = LN(lam x + beta drop(f(x)));
/// None: out = drop(f(x)) (vanilla), or lam x + beta drop(f(x)) where a vanilla block keeps a skip (cross-attention).
/// </summary>
internal sealed class Sublayer(Branch branch, NormPlacement placement, LayerNormWeights? norm, bool skip, float lambda, float beta,
    int site, ModelShape shape, bool distinctDropout)
{
    public Branch Branch => branch;
    public LayerNormWeights? Norm => norm;
    public float Lambda => lambda;
    public float Beta => beta;

    /// <summary>Stored tensors beyond the branch's own (and beyond the output, which the block provides).</summary>
    public static long ActivationCount(ModelShape s, NormPlacement placement, bool skip, bool distinctDropout)
    {
        long rows = (long)s.Batch * s.Tokens;
        long dropped = distinctDropout && (skip || placement != NormPlacement.None) ? s.StreamElements : 0;
        return dropped + placement switch
        {
            NormPlacement.Pre => NormActivations.Count(s.Batch, s.Tokens, s.Width),
            NormPlacement.Post => s.StreamElements + 2 * rows,
            _ => 0,
        };
    }

    /// <summary>Whether the combine has a skip path (every Pre and Post sublayer; vanilla only for cross-attention).</summary>
    private bool HasSkip => placement != NormPlacement.None || skip;

    public SublayerActivations Activations(Carver take) => new(take, shape, placement, branch, HasSkip && distinctDropout);

    public void Forward(Backend backend, SublayerActivations a, Tensor input, Tensor output, Tensor? context, DropoutStep dropout, ComputePrecision precision)
    {
        var branchInput = input;
        if (placement == NormPlacement.Pre)
        {
            a.Norm!.Forward(backend, input, norm!);
            Rounding.Apply(backend, precision, a.Norm.Output);
            branchInput = a.Norm.Output;
        }
        branch.Forward(backend, a.Branch, branchInput, context, precision);
        if (!HasSkip)
        {
            // Vanilla: the stream is the dropped branch output, a matmul input of the next sublayer.
            backend.Dropout(output, a.Branch.Output, dropout.Probability, dropout.Seed, dropout.Offset(site));
            Rounding.Apply(backend, precision, output);
            return;
        }
        if (a.Dropped != a.Branch.Output)
            backend.Dropout(a.Dropped, a.Branch.Output, dropout.Probability, dropout.Seed, dropout.Offset(site));
        if (placement == NormPlacement.Post)
        {
            // s = lam x + beta f, fused with the LayerNorm whose output is the stream (and the next matmul's input).
            backend.ResidualLayerNorm(a.Sum, output, a.Mean, a.Rstd, input, a.Dropped, lambda, beta, norm!.Weight.Value, norm.Bias.Value);
            Rounding.Apply(backend, precision, output);
        }
        else
            backend.Residual(output, input, a.Dropped, lambda, beta);
    }

    /// <summary>From <paramref name="gradOutput"/> (complete), accumulates into <paramref name="gradInput"/>, the
    /// context gradient and the weight gradients; <paramref name="g"/> is zeroed scratch.</summary>
    public void Backward(Backend backend, SublayerActivations a, SublayerActivations g, Tensor input, Tensor gradInput, Tensor gradOutput,
        Tensor? context, Tensor? gradContext, DropoutStep dropout)
    {
        if (!HasSkip)
            backend.DropoutBackward(g.Branch.Output, gradOutput, dropout.Probability, dropout.Seed, dropout.Offset(site));
        else
        {
            if (placement == NormPlacement.Post)
                backend.ResidualLayerNormBackward(gradInput, g.Dropped, norm!.Weight.Gradient, norm.Bias.Gradient, gradOutput, null,
                    a.Sum, a.Mean, a.Rstd, norm.Weight.Value, lambda, beta, hasBranch: true);
            else
                backend.ResidualBackward(gradInput, g.Dropped, gradOutput, lambda, beta);
            if (g.Dropped != g.Branch.Output)
                backend.DropoutBackward(g.Branch.Output, g.Dropped, dropout.Probability, dropout.Seed, dropout.Offset(site));
        }
        if (placement == NormPlacement.Pre)
        {
            branch.Backward(backend, a.Branch, g.Branch, a.Norm!.Output, g.Norm!.Output, context, gradContext);
            a.Norm.Backward(backend, gradInput, g.Norm.Output, input, norm!);
        }
        else
            branch.Backward(backend, a.Branch, g.Branch, input, gradInput, context, gradContext);
    }
}

/// <summary>What one sublayer stores: its pre-norm (Pre), the branch's tensors, the dropped branch output, and the
/// pre-norm sum with its statistics (Post).</summary>
internal sealed class SublayerActivations
{
    public SublayerActivations(Carver take, ModelShape s, NormPlacement placement, Branch branch, bool distinctDropped)
    {
        if (placement == NormPlacement.Pre) Norm = new NormActivations(take, s.Batch, s.Tokens, s.Width);
        Branch = branch.Activations(take);
        Dropped = distinctDropped ? take.Take(s.Batch, s.Tokens, s.Width) : Branch.Output;
        if (placement == NormPlacement.Post)
        {
            Sum = take.Take(s.Batch, s.Tokens, s.Width);
            Mean = take.Take(s.Batch * s.Tokens);
            Rstd = take.Take(s.Batch * s.Tokens);
        }
    }

    public NormActivations? Norm { get; }
    public BranchActivations Branch { get; }
    public Tensor Dropped { get; }
    public Tensor Sum { get; } = null!;
    public Tensor Mean { get; } = null!;
    public Tensor Rstd { get; } = null!;
}
