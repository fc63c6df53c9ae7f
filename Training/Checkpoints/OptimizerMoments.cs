using System.Globalization;

namespace DeepScaleLM.Training.Checkpoints;

/// <summary>
/// AdamW's moments as a safetensors file (<c>optimizer.safetensors</c>): for every parameter P, in model order,
/// <c>optimizer.first_moment.P</c> (m) and then <c>optimizer.second_moment.P</c> (v), float32 with P's shape, so
/// another framework can map them onto its own optimizer state by parameter name. Metadata: <c>format</c> =
/// <c>dslm-optimizer</c>, <c>format_version</c> = 1, <c>optimizer</c> = <c>adamw</c>, <c>optimizer_step</c> = t.
/// </summary>
/// <remarks>In memory the moments are flat (llm.c style): one span per moment holding every parameter's values
/// back to back in the order of the parameter list.</remarks>
public static class OptimizerMoments
{
    /// <summary>Name prefix of the first-moment (m) tensors.</summary>
    public const string FirstMomentPrefix = "optimizer.first_moment.";

    /// <summary>Name prefix of the second-moment (v) tensors.</summary>
    public const string SecondMomentPrefix = "optimizer.second_moment.";

    const string FormatName = "dslm-optimizer";
    const string FormatVersion = "1";

    /// <summary>Writes the moments of <paramref name="parameters"/> (flat, in list order) with step <paramref name="optimizerStep"/>.</summary>
    /// <exception cref="ArgumentException">A moment span's length is not the parameters' total element count.</exception>
    public static void Write(Stream destination, IReadOnlyList<(string Name, int[] Shape)> parameters, long optimizerStep,
        ReadOnlySpan<float> firstMoment, ReadOnlySpan<float> secondMoment)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        CheckTotal(parameters, firstMoment.Length, secondMoment.Length);
        var declarations = new List<(string, SafeTensorsDType, int[])>(2 * parameters.Count);
        foreach (var (name, shape) in parameters)
        {
            declarations.Add((FirstMomentPrefix + name, SafeTensorsDType.F32, shape));
            declarations.Add((SecondMomentPrefix + name, SafeTensorsDType.F32, shape));
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["format_version"] = FormatVersion,
            ["optimizer"] = "adamw",
            ["optimizer_step"] = optimizerStep.ToString(CultureInfo.InvariantCulture),
        };
        var writer = new SafeTensorsWriter(destination, declarations, metadata);
        int offset = 0;
        foreach (var (_, shape) in parameters)
        {
            int count = ElementCount(shape);
            writer.WriteTensor(firstMoment.Slice(offset, count));
            writer.WriteTensor(secondMoment.Slice(offset, count));
            offset += count;
        }
        writer.Complete();
    }

    /// <summary>Reads the moments of <paramref name="parameters"/> into the flat spans, checking that the file
    /// holds exactly these tensors with these shapes and the expected optimizer step.</summary>
    /// <exception cref="SafeTensorsFormatException">The file is truncated or corrupt, of another format or version,
    /// of another step, misses a tensor, has one too many, or a shape differs; the message names file and tensor.</exception>
    public static void Read(string path, IReadOnlyList<(string Name, int[] Shape)> parameters, long expectedOptimizerStep,
        Span<float> firstMoment, Span<float> secondMoment)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        CheckTotal(parameters, firstMoment.Length, secondMoment.Length);
        using var reader = SafeTensorsReader.Open(path);
        string Metadata(string key) => reader.Metadata.TryGetValue(key, out string? value) ? value
            : throw new SafeTensorsFormatException(path, $"metadata has no '{key}' (not an optimizer-state file)");
        if (Metadata("format") != FormatName) throw new SafeTensorsFormatException(path, $"metadata format is '{Metadata("format")}', expected '{FormatName}'");
        if (Metadata("format_version") != FormatVersion)
            throw new SafeTensorsFormatException(path, $"format version {Metadata("format_version")} is not supported (this build reads version {FormatVersion})");
        string step = Metadata("optimizer_step");
        if (step != expectedOptimizerStep.ToString(CultureInfo.InvariantCulture))
            throw new SafeTensorsFormatException(path, $"optimizer_step is {step} but the trainer state says {expectedOptimizerStep} (files from different checkpoints)");

        var expected = new HashSet<string>(StringComparer.Ordinal);
        int offset = 0;
        foreach (var (name, shape) in parameters)
        {
            int count = ElementCount(shape);
            ReadMoment(FirstMomentPrefix + name, shape, firstMoment.Slice(offset, count));
            ReadMoment(SecondMomentPrefix + name, shape, secondMoment.Slice(offset, count));
            offset += count;
        }
        void ReadMoment(string tensor, int[] shape, Span<float> destination)
        {
            expected.Add(tensor);
            var entry = reader.Get(tensor);
            if (!entry.Shape.AsSpan().SequenceEqual(shape))
                throw new SafeTensorsFormatException(path, $"expected shape [{string.Join(", ", shape)}] but found {entry.ShapeText}", tensor);
            reader.Read(tensor, destination);
        }

        var extra = reader.Entries.FirstOrDefault(e => !expected.Contains(e.Name));
        if (extra is not null) throw new SafeTensorsFormatException(path, "not a moment of any parameter of the model", extra.Name);
    }

    static void CheckTotal(IReadOnlyList<(string Name, int[] Shape)> parameters, int firstLength, int secondLength)
    {
        long total = 0;
        foreach (var (_, shape) in parameters) total += ElementCount(shape);
        if (firstLength != total || secondLength != total)
            throw new ArgumentException($"the moments hold {firstLength} and {secondLength} values but the {parameters.Count} parameters have {total}");
    }

    static int ElementCount(int[] shape)
    {
        long count = 1;
        foreach (int d in shape) count *= d;
        return checked((int)count);
    }
}
