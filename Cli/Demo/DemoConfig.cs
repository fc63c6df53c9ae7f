namespace DeepScaleLM.Cli.Demo;

/// <summary>Size and training settings of the built-in op demo: a small byte-level causal transformer.</summary>
/// <param name="Layers">Transformer blocks.</param>
/// <param name="Channels">Model width d.</param>
/// <param name="Heads">Attention heads (d must divide evenly).</param>
/// <param name="Tokens">Context length T.</param>
/// <param name="Batch">Sequences per step B.</param>
/// <param name="Steps">Optimizer steps.</param>
/// <param name="LearningRate">AdamW step size.</param>
/// <param name="Dropout">Dropout on every branch output (DSLM places it before the residual combine).</param>
/// <param name="Seed">Seeds init, data order and dropout.</param>
internal sealed record DemoConfig(
    int Layers = 4, int Channels = 64, int Heads = 4, int Tokens = 64, int Batch = 8, int Steps = 60,
    float LearningRate = 3e-3f, float Dropout = 0.1f, int Seed = 1234)
{
    /// <summary>Byte-level vocabulary.</summary>
    public const int Vocabulary = 256;

    /// <summary>Feed-forward width, 4d as in the paper's blocks.</summary>
    public int Hidden => 4 * Channels;

    /// <summary>Throws <see cref="ArgumentException"/> naming the setting that cannot work.</summary>
    public void Validate()
    {
        if (Layers < 1) throw new ArgumentException($"--layers must be at least 1 (got {Layers})");
        if (Channels < 1 || Heads < 1 || Channels % Heads != 0)
            throw new ArgumentException($"--channels ({Channels}) must be a positive multiple of --heads ({Heads})");
        if (Tokens < 2) throw new ArgumentException($"--tokens must be at least 2 (got {Tokens})");
        if (Batch < 1) throw new ArgumentException($"--batch must be at least 1 (got {Batch})");
        if (Steps < 0) throw new ArgumentException($"--steps must not be negative (got {Steps})");
        if (!(LearningRate > 0 && float.IsFinite(LearningRate))) throw new ArgumentException($"--lr must be a positive number (got {LearningRate})");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"--dropout must lie in [0, 1) (got {Dropout})");
    }
}
