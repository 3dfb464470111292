namespace Berth.Images;

/// <summary>The kinds of expected failure (DESIGN.md "Errors"); mapped to exit codes only at the CLI edge.</summary>
public enum ImageErrorKind { NotFound, AlreadyExists, InvalidArgument, FailedPrecondition, Unavailable, Unauthorized, DataLoss }

/// <summary>An expected failure of the image area with a one-line message that names the object.</summary>
public sealed class ImageException(ImageErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public ImageErrorKind Kind { get; } = kind;

    public static ImageException NotFound(string message) => new(ImageErrorKind.NotFound, message);
    public static ImageException Invalid(string message) => new(ImageErrorKind.InvalidArgument, message);
    public static ImageException Precondition(string message) => new(ImageErrorKind.FailedPrecondition, message);
    public static ImageException Unavailable(string message, Exception? inner = null) => new(ImageErrorKind.Unavailable, message, inner);
    public static ImageException Unauthorized(string message) => new(ImageErrorKind.Unauthorized, message);
    public static ImageException DataLoss(string message) => new(ImageErrorKind.DataLoss, message);
}
