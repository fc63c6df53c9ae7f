using DeepScaleLM.Native;

namespace DeepScaleLM.Layers;

/// <summary>
/// Deterministic init draws from Philox (the generator dropout uses): each parameter tensor draws from its own
/// stream, offset = the tensor's index, keyed by the config's seed, so the same seed gives the same parameters
/// bit for bit whatever else changes in the order of initialisation.
/// </summary>
internal sealed class InitSampler(Backend backend, int seed)
{
    private readonly ulong _seed = unchecked((ulong)seed);

    /// <summary>N(0, std^2) entries (std 0 gives zeros), drawn on the tensor's own device (Backend.RandomNormal).</summary>
    public void Normal(Tensor tensor, double std, int stream) => backend.RandomNormal(tensor, _seed, (ulong)stream, 0f, (float)std);

    /// <summary>Every entry <paramref name="value"/>.</summary>
    public void Constant(Tensor tensor, float value)
    {
        var values = new float[tensor.ElementCount];
        Array.Fill(values, value);
        backend.Upload<float>(tensor, values);
    }

    /// <summary>
    /// SUO (spa-theory.md 4): a Haar-random orthogonal matrix for a Linear weight [outputs, inputs] (orthonormal
    /// columns when outputs &gt;= inputs, else orthonormal rows), from Gram-Schmidt on a Gaussian matrix (which is QR
    /// with R's diagonal made positive, the sign fix that makes it Haar), times <paramref name="scale"/>.
    /// </summary>
    public void Orthogonal(Tensor weight, double scale, int stream)
    {
        int outputs = weight.Shape[0], inputs = weight.Shape[1];
        bool columns = outputs >= inputs;
        int count = columns ? inputs : outputs, length = columns ? outputs : inputs;
        var draws = Gaussians(count * length, stream);
        var vectors = new double[count][];
        for (int v = 0; v < count; v++)
        {
            var vector = draws.AsSpan(v * length, length).ToArray();
            // Modified Gram-Schmidt, twice ("twice is enough" for orthogonality to rounding).
            for (int pass = 0; pass < 2; pass++)
                for (int u = 0; u < v; u++)
                {
                    double dot = 0;
                    for (int i = 0; i < length; i++) dot += vectors[u][i] * vector[i];
                    for (int i = 0; i < length; i++) vector[i] -= dot * vectors[u][i];
                }
            double norm = 0;
            foreach (double x in vector) norm += x * x;
            norm = Math.Sqrt(norm);
            for (int i = 0; i < length; i++) vector[i] /= norm;
            vectors[v] = vector;
        }
        var values = new float[outputs * inputs];
        for (int v = 0; v < count; v++)
            for (int i = 0; i < length; i++)
                values[columns ? i * inputs + v : v * inputs + i] = (float)(scale * vectors[v][i]);
        backend.Upload<float>(weight, values);
    }

    /// <summary>Standard normals of stream (seed, <paramref name="stream"/>) on the host, the values Backend.RandomNormal
    /// draws on a device.</summary>
    private double[] Gaussians(int count, int stream)
    {
        var draws = new double[count];
        Philox.Normals(draws, _seed, (ulong)stream);
        return draws;
    }
}
