namespace Berth.Engine.Containers;

/// <summary>docker-style adjective_noun names for containers started without --name.</summary>
public static class NameGenerator
{
    static readonly string[] Left =
    [
        "admiring", "brave", "calm", "clever", "eager", "epic", "festive", "gallant", "happy", "jolly", "keen", "lucid",
        "modest", "nifty", "optimistic", "quirky", "serene", "sharp", "stoic", "tender", "upbeat", "vibrant", "wizardly", "zealous",
    ];
    static readonly string[] Right =
    [
        "babbage", "curie", "darwin", "einstein", "euler", "fermi", "galileo", "hopper", "hypatia", "kepler", "lovelace", "meitner",
        "newton", "noether", "pascal", "ritchie", "shannon", "tesla", "thompson", "torvalds", "turing", "wozniak", "yalow", "zuse",
    ];

    public static string Next() =>
        $"{Left[Random.Shared.Next(Left.Length)]}_{Right[Random.Shared.Next(Right.Length)]}_{Random.Shared.Next(1000, 9999)}";
}
