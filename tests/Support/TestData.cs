using DeepScaleLM.Native;

namespace DeepScaleLM.Tests.Support;

/// <summary>Deterministic random inputs, and copies between float64 references and float32 tensors.</summary>
internal static class TestData
{
    /// <summary>Normal(0, scale^2) values from a seeded generator.</summary>
    public static double[] Normal(int seed, long count, double scale = 1.0)
    {
        var random = new Random(seed);
        var values = new double[count];
        for (long i = 0; i < count; i++)
        {
            // Box-Muller: two uniforms in (0, 1] give one standard normal.
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            values[i] = scale * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
        }
        return values;
    }

    /// <summary>Uniform integers in [0, maxExclusive).</summary>
    public static int[] Integers(int seed, long count, int maxExclusive)
    {
        var random = new Random(seed);
        var values = new int[count];
        for (long i = 0; i < count; i++) values[i] = random.Next(maxExclusive);
        return values;
    }

    /// <summary>The values rounded to float32, so a float64 reference sees exactly what the backend sees.</summary>
    public static double[] RoundToSingle(double[] values) => Array.ConvertAll(values, v => (double)(float)v);

    /// <summary>A new float32 tensor holding <paramref name="values"/> (rounded to float32).</summary>
    public static Tensor Tensor(Backend backend, double[] values, params int[] dims)
    {
        var tensor = backend.Allocate(dims);
        backend.Upload<float>(tensor, Array.ConvertAll(values, v => (float)v));
        return tensor;
    }

    /// <summary>A new Int32 tensor holding <paramref name="values"/>.</summary>
    public static Tensor IntTensor(Backend backend, int[] values, params int[] dims)
    {
        var tensor = backend.Allocate(DType.Int32, dims);
        backend.Upload<int>(tensor, values);
        return tensor;
    }

    /// <summary>The tensor's values widened to float64.</summary>
    public static double[] Read(Backend backend, Tensor tensor)
    {
        var values = new float[tensor.ElementCount];
        backend.Download<float>(values, tensor);
        return Array.ConvertAll(values, v => (double)v);
    }
}
