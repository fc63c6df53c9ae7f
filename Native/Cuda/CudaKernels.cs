using System.Runtime.CompilerServices;
using DeepScaleLM.Interop;
using ModuleHandle = DeepScaleLM.Interop.ModuleHandle;

namespace DeepScaleLM.Native.Cuda;

/// <summary>
/// The kernels of Native/cuda/, loaded from the PTX embedded in this assembly (one module per .cu file; the driver
/// JIT-compiles compute_80 PTX for the device it runs on). A failed load throws a <see cref="CudaException"/> carrying
/// the JIT's error log.
/// </summary>
internal sealed class CudaKernels : IDisposable
{
    private readonly List<ModuleHandle> _modules = [];

    public CudaKernels(nint context)
    {
        try
        {
            var activation = Load("activation", context);
            ActivationForward = Function(activation, "activation_forward");
            ActivationBackward = Function(activation, "activation_backward");
            var dropout = Load("dropout", context);
            DropoutApply = Function(dropout, "dropout_apply");
            RandomNormal = Function(dropout, "random_normal");
            var layerNorm = Load("layernorm", context);
            ResidualLayerNormForward = Function(layerNorm, "residual_layernorm_forward");
            ResidualLayerNormBackward = Function(layerNorm, "residual_layernorm_backward");
            ResidualForward = Function(layerNorm, "residual_forward");
            ResidualBackward = Function(layerNorm, "residual_backward");
            var matMul = Load("matmul", context);
            BiasAdd = Function(matMul, "bias_add");
            ColumnPartialSums = Function(matMul, "column_partial_sums");
            ColumnSumsAccumulate = Function(matMul, "column_sums_accumulate");
            var attention = Load("attention", context);
            AttentionSoftmax = Function(attention, "attention_softmax");
            AttentionMixRescale = Function(attention, "attention_mix_rescale");
            AttentionScaleRows = Function(attention, "attention_scale_rows");
            AttentionValueMixGradient = Function(attention, "attention_value_mix_gradient");
            AttentionSoftmaxBackward = Function(attention, "attention_softmax_backward");
            AttentionMixGradient = Function(attention, "attention_mix_gradient");
            var embedding = Load("embedding", context);
            EmbeddingForward = Function(embedding, "embedding_forward");
            EmbeddingBackwardTokens = Function(embedding, "embedding_backward_tokens");
            EmbeddingBackwardPositions = Function(embedding, "embedding_backward_positions");
            FindInvalidIndex = Function(embedding, "find_invalid_index");
            var crossEntropy = Load("crossentropy", context);
            CrossEntropyForward = Function(crossEntropy, "cross_entropy_forward");
            CrossEntropyBackward = Function(crossEntropy, "cross_entropy_backward");
            var optimizer = Load("optimizer", context);
            AdamW = Function(optimizer, "adamw");
            SumSquaresPartials = Function(optimizer, "sum_squares_partials");
            SumPartialsInto = Function(optimizer, "sum_partials_into");
            Scale = Function(optimizer, "scale");
            var precision = Load("precision", context);
            RoundToPrecision = Function(precision, "round_to_precision");
            var moments = Load("moments", context);
            TokenMeans = Function(moments, "token_means");
            CentredSums = Function(moments, "centred_sums");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public nint ActivationForward { get; }
    public nint RoundToPrecision { get; }
    public nint ActivationBackward { get; }
    public nint DropoutApply { get; }
    public nint RandomNormal { get; }
    public nint ResidualLayerNormForward { get; }
    public nint ResidualLayerNormBackward { get; }
    public nint ResidualForward { get; }
    public nint ResidualBackward { get; }
    public nint BiasAdd { get; }
    public nint ColumnPartialSums { get; }
    public nint ColumnSumsAccumulate { get; }
    public nint AttentionSoftmax { get; }
    public nint AttentionMixRescale { get; }
    public nint AttentionScaleRows { get; }
    public nint AttentionValueMixGradient { get; }
    public nint AttentionSoftmaxBackward { get; }
    public nint AttentionMixGradient { get; }
    public nint EmbeddingForward { get; }
    public nint EmbeddingBackwardTokens { get; }
    public nint EmbeddingBackwardPositions { get; }
    public nint FindInvalidIndex { get; }
    public nint CrossEntropyForward { get; }
    public nint CrossEntropyBackward { get; }
    public nint AdamW { get; }
    public nint SumSquaresPartials { get; }
    public nint SumPartialsInto { get; }
    public nint Scale { get; }
    public nint TokenMeans { get; }
    public nint CentredSums { get; }

    /// <summary>The names of the embedded PTX modules (the .cu files they were built from, without extension).</summary>
    public static IReadOnlyList<string> ModuleNames() =>
        [.. typeof(CudaKernels).Assembly.GetManifestResourceNames()
            .Where(name => name.StartsWith(ResourcePrefix, StringComparison.Ordinal) && name.EndsWith(".ptx", StringComparison.Ordinal))
            .Select(name => name[ResourcePrefix.Length..^".ptx".Length])
            .Order(StringComparer.Ordinal)];

    /// <summary>The embedded PTX text of module <paramref name="name"/> (e.g. "attention").</summary>
    /// <exception cref="InvalidOperationException">No such module is embedded.</exception>
    public static byte[] Ptx(string name)
    {
        using var stream = typeof(CudaKernels).Assembly.GetManifestResourceStream(ResourcePrefix + name + ".ptx")
            ?? throw new InvalidOperationException($"the PTX of kernel module '{name}' is not embedded in {typeof(CudaKernels).Assembly.GetName().Name}");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    private const string ResourcePrefix = "DeepScaleLM.Native.cuda.";

    private nint Load(string name, nint context)
    {
        var module = ModuleHandle.Load(Ptx(name), context, out _);
        _modules.Add(module);
        return module.DangerousGetHandle();
    }

    private static nint Function(nint module, string name, [CallerArgumentExpression(nameof(module))] string moduleName = "")
    {
        CudaCheck.Check(CudaLibrary.Driver, CudaDriver.cuModuleGetFunction(out nint function, module, name), nameof(CudaDriver.cuModuleGetFunction), moduleName, name);
        return function;
    }

    public void Dispose()
    {
        foreach (var module in _modules) module.Dispose();
        _modules.Clear();
    }
}
