namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void EmbeddingCore(Tensor output, Tensor tokens, Tensor tokenTable, Tensor? positionTable) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void EmbeddingBackwardCore(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens) => throw new NotImplementedException();
}
