namespace DeepScaleLM.Native.Profiling;

/// <summary>
/// The ops <see cref="ProfilingBackend"/> times, one per public method of the op contract (<see cref="Backend"/>); the
/// name of each is the name of that method, so a profile row reads like the call that made it.
/// </summary>
public enum ProfiledOp
{
    /// <summary><see cref="Backend.Upload{T}"/>: host to device.</summary>
    Upload,
    /// <summary><see cref="Backend.Download{T}"/>: device to host.</summary>
    Download,
    /// <summary><see cref="Backend.Zero"/>.</summary>
    Zero,
    /// <summary><see cref="Backend.Copy"/>.</summary>
    Copy,
    /// <summary><see cref="Backend.MatMul"/>.</summary>
    MatMul,
    /// <summary><see cref="Backend.MatMulBackward"/>.</summary>
    MatMulBackward,
    /// <summary><see cref="Backend.Attention"/>.</summary>
    Attention,
    /// <summary><see cref="Backend.AttentionBackward"/>.</summary>
    AttentionBackward,
    /// <summary><see cref="Backend.ResidualLayerNorm"/>.</summary>
    ResidualLayerNorm,
    /// <summary><see cref="Backend.ResidualLayerNormBackward"/>.</summary>
    ResidualLayerNormBackward,
    /// <summary><see cref="Backend.Residual"/>.</summary>
    Residual,
    /// <summary><see cref="Backend.ResidualBackward"/>.</summary>
    ResidualBackward,
    /// <summary><see cref="Backend.Activation"/>.</summary>
    Activation,
    /// <summary><see cref="Backend.ActivationBackward"/>.</summary>
    ActivationBackward,
    /// <summary><see cref="Backend.Dropout"/>.</summary>
    Dropout,
    /// <summary><see cref="Backend.DropoutBackward"/>.</summary>
    DropoutBackward,
    /// <summary><see cref="Backend.Embedding"/>.</summary>
    Embedding,
    /// <summary><see cref="Backend.EmbeddingBackward"/>.</summary>
    EmbeddingBackward,
    /// <summary><see cref="Backend.SoftmaxCrossEntropy"/>.</summary>
    SoftmaxCrossEntropy,
    /// <summary><see cref="Backend.SoftmaxCrossEntropyBackward"/>.</summary>
    SoftmaxCrossEntropyBackward,
    /// <summary><see cref="Backend.AdamW"/>.</summary>
    AdamW,
    /// <summary><see cref="Backend.GlobalNorm"/>.</summary>
    GlobalNorm,
    /// <summary><see cref="Backend.ClipByGlobalNorm"/>.</summary>
    ClipByGlobalNorm,
    /// <summary><see cref="Backend.Scale"/>.</summary>
    Scale,
    /// <summary><see cref="Backend.Moments"/>.</summary>
    Moments,
    /// <summary><see cref="Backend.RoundToPrecision"/>.</summary>
    RoundToPrecision,
    /// <summary><see cref="Backend.RandomNormal"/>.</summary>
    RandomNormal,
}
