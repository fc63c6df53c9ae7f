using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace DeepScaleLM.Layers;

/// <summary>Reads a config record from JSON in which any field may be left out (it keeps its default).</summary>
public static class ConfigJson
{
    /// <summary>
    /// The record of <paramref name="json"/>, every missing field taken from <paramref name="defaultsJson"/>.
    /// Source-generated serializers set init-only properties through one object initializer, so a missing field
    /// would otherwise become 0 rather than its default: the given fields are merged over the defaults first.
    /// </summary>
    /// <param name="json">The JSON object to read.</param>
    /// <param name="what">How errors name the record, e.g. "model config".</param>
    /// <param name="defaultsJson">The default record as JSON.</param>
    /// <param name="type">The source-generated type info (trimming- and AOT-safe).</param>
    /// <exception cref="ArgumentException">The JSON is malformed, not an object, null, or names an unknown field.</exception>
    public static T Read<T>(string json, string what, string defaultsJson, JsonTypeInfo<T> type) where T : class
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            var given = JsonNode.Parse(json) as JsonObject ?? throw new ArgumentException($"{what}: the JSON is not an object", nameof(json));
            var merged = (JsonObject)JsonNode.Parse(defaultsJson)!;
            foreach (var (name, value) in given)
            {
                if (!merged.ContainsKey(name)) throw new ArgumentException($"{what}: unknown field '{name}'", name);
                merged[name] = value?.DeepClone();
            }
            return merged.Deserialize(type) ?? throw new ArgumentException($"{what}: the JSON is null", nameof(json));
        }
        catch (JsonException e) { throw new ArgumentException($"{what}: {e.Message}", nameof(json), e); }
    }
}
