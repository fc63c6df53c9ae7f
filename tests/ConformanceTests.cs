using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Native.Cuda;

namespace DeepScaleLM.Tests;

/// <summary>
/// The op conformance suite (Native/Cuda/Conformance.cs): every op forward and backward on the CUDA backend against
/// the CPU backend. Without a GPU those are skipped ("no CUDA device"); the suite itself is still exercised here, CPU
/// against CPU on another thread count, and against a backend with one deliberately wrong op.
/// </summary>
[Collection("cuda")]
public class ConformanceTests
{
    public static TheoryData<string> CheckNames => [.. Conformance.Names];

    [CudaTheory]
    [MemberData(nameof(CheckNames))]
    public void CudaMatchesTheCpuBackend(string check)
    {
        using var cpu = new CpuBackend();
        var result = Conformance.Run(check, cpu, CudaDevice.Backend);
        Assert.True(result.Passed, $"{result.Name}: error {result.MaxError:G3} at {result.WorstOutput} > {result.Tolerance:G3} {result.Failure}");
    }

    [Fact]
    public void TheCpuBackendConformsToItselfOnAnotherThreadCount()
    {
        using var serial = new CpuBackend(1);
        using var parallel = new CpuBackend(2);
        var results = Conformance.RunAll(serial, parallel);
        Assert.Equal(Conformance.Names, results.Select(r => r.Name));
        Assert.All(results, result => Assert.True(result.Passed, $"{result.Name}: {result.MaxError:G3} at {result.WorstOutput} {result.Failure}"));
        // The element-wise ops have tolerance 0, and they are bit-identical.
        Assert.All(results.Where(r => r.Tolerance == 0), result => Assert.Equal(0, result.MaxAbsoluteError));
    }

    [Fact]
    public void AWrongActivationFailsItsCheckAndOnlyIt()
    {
        using var cpu = new CpuBackend(1);
        using var wrong = new ScaledActivationBackend(1.0001f);
        var results = Conformance.RunAll(cpu, wrong);
        var failed = Assert.Single(results, r => !r.Passed);
        Assert.Equal("Activation", failed.Name);
        Assert.Null(failed.Failure);
        // The largest |x| is about 6, so its GeLU is off by about 6e-4, relative 1e-4.
        Assert.InRange(failed.MaxError, 5e-5, 2e-4);
    }

    [Fact]
    public void AnUnknownCheckIsAnErrorListingTheChecks()
    {
        using var cpu = new CpuBackend(1);
        var error = Assert.Throws<ArgumentException>(() => Conformance.Run("Softmax", cpu, cpu));
        Assert.Contains("AttentionBackward", error.Message);
    }

    /// <summary>
    /// A backend that runs every op through a CPU backend's public methods, except that its activation forward
    /// multiplies the result by a factor: a stand-in for a buggy kernel.
    /// </summary>
    private sealed class ScaledActivationBackend(float factor) : Backend
    {
        private readonly CpuBackend _inner = new(1);
        public override Device Device => Device.Cpu;
        protected override TensorStorage AllocateStorage(long byteLength) => _inner.Allocate(DType.Int32, checked((int)(byteLength / 4))).Storage;
        protected override void UploadCore<T>(Tensor destination, ReadOnlySpan<T> source) => _inner.Upload(destination, source);
        protected override void DownloadCore<T>(Span<T> destination, Tensor source) => _inner.Download(destination, source);
        protected override void ZeroCore(Tensor tensor) => _inner.Zero(tensor);
        protected override void CopyCore(Tensor destination, Tensor source) => _inner.Copy(destination, source);
        protected override void ActivationCore(Tensor output, Tensor input, ActivationFunction function)
        {
            _inner.Activation(output, input, function);
            _inner.Scale(output, factor);
        }
        protected override void ActivationBackwardCore(Tensor gradInput, Tensor gradOutput, Tensor input, ActivationFunction function) =>
            _inner.ActivationBackward(gradInput, gradOutput, input, function);
        protected override void AttentionCore(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options) =>
            _inner.Attention(output, probabilities, query, key, value, options);
        protected override void AttentionBackwardCore(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta,
            Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options) =>
            _inner.AttentionBackward(gradQuery, gradKey, gradValue, gradMixAlpha, gradMixBeta, gradOutput, probabilities, query, key, value, options);
        protected override void SoftmaxCrossEntropyCore(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex) =>
            _inner.SoftmaxCrossEntropy(losses, logits, targets, ignoreIndex);
        protected override void SoftmaxCrossEntropyBackwardCore(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex) =>
            _inner.SoftmaxCrossEntropyBackward(gradLogits, gradLosses, logits, targets, ignoreIndex);
        protected override void RoundToPrecisionCore(Tensor output, Tensor input, ComputePrecision precision) =>
            _inner.RoundToPrecision(output, input, precision);
        protected override void RandomNormalCore(Tensor output, ulong seed, ulong offset, float mean, float std) =>
            _inner.RandomNormal(output, seed, offset, mean, std);
        protected override void DropoutCore(Tensor output, Tensor input, float probability, ulong seed, ulong offset) =>
            _inner.Dropout(output, input, probability, seed, offset);
        protected override void DropoutBackwardCore(Tensor gradInput, Tensor gradOutput, float probability, ulong seed, ulong offset) =>
            _inner.DropoutBackward(gradInput, gradOutput, probability, seed, offset);
        protected override void EmbeddingCore(Tensor output, Tensor tokens, Tensor tokenTable, Tensor? positionTable) =>
            _inner.Embedding(output, tokens, tokenTable, positionTable);
        protected override void EmbeddingBackwardCore(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens) =>
            _inner.EmbeddingBackward(gradTokenTable, gradPositionTable, gradOutput, tokens);
        protected override (long Position, int Value) FindInvalidIndexCore(Tensor indices, int limit, int? allowed)
        {
            var values = indices.AsSpan<int>();
            for (int i = 0; i < values.Length; i++)
                if ((values[i] < 0 || values[i] >= limit) && values[i] != allowed) return (i, values[i]);
            return (-1, 0);
        }
        protected override void ResidualLayerNormCore(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd, Tensor x, Tensor? branch,
            float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon) =>
            _inner.ResidualLayerNorm(residualOutput, normOutput, mean, rstd, x, branch, lambda, beta, weight, bias, epsilon);
        protected override void ResidualLayerNormBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias, Tensor gradNormOutput,
            Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight, float lambda, float beta, bool hasBranch) =>
            _inner.ResidualLayerNormBackward(gradX, gradBranch, gradWeight, gradBias, gradNormOutput, gradResidualOutput, normInput, mean, rstd, weight, lambda, beta, hasBranch);
        protected override void ResidualCore(Tensor output, Tensor x, Tensor branch, float lambda, float beta) => _inner.Residual(output, x, branch, lambda, beta);
        protected override void ResidualBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta) =>
            _inner.ResidualBackward(gradX, gradBranch, gradOutput, lambda, beta);
        protected override void MatMulCore(Tensor output, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha, float beta, Tensor? bias) =>
            _inner.MatMul(output, a, b, transposeA, transposeB, alpha, beta, bias);
        protected override void MatMulBackwardCore(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b,
            bool transposeA, bool transposeB, float alpha) =>
            _inner.MatMulBackward(gradA, gradB, gradBias, gradOutput, a, b, transposeA, transposeB, alpha);
        protected override MomentStatistics MomentsCore(Tensor activations) => _inner.Moments(activations);
        protected override void AdamWCore(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWOptions options, int step, float gradientScale) =>
            _inner.AdamW(parameters, gradients, firstMoment, secondMoment, options, step, gradientScale);
        protected override double GlobalNormCore(ReadOnlySpan<Tensor> tensors) => _inner.GlobalNorm(tensors);
        protected override void ScaleCore(Tensor tensor, float factor) => _inner.Scale(tensor, factor);
        protected override void Dispose(bool disposing)
        {
            if (disposing) _inner.Dispose();
        }
    }
}
