namespace Berth.Engine.Networking;

/// <summary>The kinds of network failure callers map to exit codes / HTTP at the edge.</summary>
public enum NetworkErrorKind { NotFound, AlreadyExists, InvalidArgument, FailedPrecondition, Unavailable, Internal }

/// <summary>A networking failure whose message names the object (network "web", container "c1").</summary>
public sealed class NetworkException(NetworkErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public NetworkErrorKind Kind { get; } = kind;

    public static NetworkException NotFound(string message) => new(NetworkErrorKind.NotFound, message);
    public static NetworkException Exists(string message) => new(NetworkErrorKind.AlreadyExists, message);
    public static NetworkException Invalid(string message) => new(NetworkErrorKind.InvalidArgument, message);
    public static NetworkException Precondition(string message) => new(NetworkErrorKind.FailedPrecondition, message);
}
