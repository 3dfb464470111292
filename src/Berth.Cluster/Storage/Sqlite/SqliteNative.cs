using System.Runtime.InteropServices;
using System.Text;

namespace Berth.Cluster.Storage.Sqlite;

/// <summary>
/// The few calls of the system's libsqlite3 (Debian's libsqlite3-0) that the store needs. Kept here,
/// in one place, rather than through an ADO.NET provider: blittable LibraryImports are AOT-safe and
/// the single-file binary needs no bundled native library.
/// </summary>
internal static unsafe partial class SqliteNative
{
    const string Lib = "libsqlite3.so.0";
    public const int OK = 0, ROW = 100, DONE = 101, BUSY = 5, CONSTRAINT = 19;
    public const int OPEN_READWRITE = 0x2, OPEN_CREATE = 0x4, OPEN_NOMUTEX = 0x8000;
    public static readonly nint Transient = -1;

    [LibraryImport(Lib)] public static partial int sqlite3_open_v2(byte* filename, out nint db, int flags, nint vfs);
    [LibraryImport(Lib)] public static partial int sqlite3_close_v2(nint db);
    [LibraryImport(Lib)] public static partial int sqlite3_exec(nint db, byte* sql, nint callback, nint arg, nint errmsg);
    [LibraryImport(Lib)] public static partial int sqlite3_prepare_v2(nint db, byte* sql, int nbyte, out nint stmt, nint tail);
    [LibraryImport(Lib)] public static partial int sqlite3_bind_int64(nint stmt, int index, long value);
    [LibraryImport(Lib)] public static partial int sqlite3_bind_text(nint stmt, int index, byte* text, int n, nint destructor);
    [LibraryImport(Lib)] public static partial int sqlite3_bind_blob(nint stmt, int index, byte* blob, int n, nint destructor);
    [LibraryImport(Lib)] public static partial int sqlite3_step(nint stmt);
    [LibraryImport(Lib)] public static partial int sqlite3_reset(nint stmt);
    [LibraryImport(Lib)] public static partial int sqlite3_clear_bindings(nint stmt);
    [LibraryImport(Lib)] public static partial int sqlite3_finalize(nint stmt);
    [LibraryImport(Lib)] public static partial long sqlite3_column_int64(nint stmt, int col);
    [LibraryImport(Lib)] public static partial byte* sqlite3_column_blob(nint stmt, int col);
    [LibraryImport(Lib)] public static partial byte* sqlite3_column_text(nint stmt, int col);
    [LibraryImport(Lib)] public static partial int sqlite3_column_bytes(nint stmt, int col);
    [LibraryImport(Lib)] public static partial int sqlite3_column_type(nint stmt, int col);
    [LibraryImport(Lib)] public static partial byte* sqlite3_errmsg(nint db);
    [LibraryImport(Lib)] public static partial int sqlite3_busy_timeout(nint db, int ms);

    public static string Message(nint db) => Marshal.PtrToStringUTF8((nint)sqlite3_errmsg(db)) ?? "unknown error";

    public static byte[] Utf8z(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }
}

/// <summary>A failed SQLite call, naming the operation and the database file.</summary>
public sealed class SqliteException(string operation, string path, int code, string message)
    : StoreException($"sqlite {operation} on {path}: {message} (code {code})")
{
    public int Code { get; } = code;
}

/// <summary>One SQLite connection (not thread-safe: the store serialises access).</summary>
internal sealed unsafe class SqliteDb : IDisposable
{
    readonly nint db;
    readonly Dictionary<string, SqliteStatement> cache = new(StringComparer.Ordinal);
    public string Path { get; }

    public SqliteDb(string path)
    {
        Path = path;
        fixed (byte* p = SqliteNative.Utf8z(path))
        {
            var rc = SqliteNative.sqlite3_open_v2(p, out db, SqliteNative.OPEN_READWRITE | SqliteNative.OPEN_CREATE | SqliteNative.OPEN_NOMUTEX, 0);
            if (rc != SqliteNative.OK)
            {
                var msg = db != 0 ? SqliteNative.Message(db) : "cannot open";
                if (db != 0) SqliteNative.sqlite3_close_v2(db);
                throw new SqliteException("open", path, rc, msg);
            }
        }
        SqliteNative.sqlite3_busy_timeout(db, 5000);
    }

    public void Exec(string sql)
    {
        fixed (byte* p = SqliteNative.Utf8z(sql))
        {
            var rc = SqliteNative.sqlite3_exec(db, p, 0, 0, 0);
            if (rc != SqliteNative.OK) throw Error("exec", rc);
        }
    }

    /// <summary>A cached prepared statement, reset and ready to bind.</summary>
    public SqliteStatement Prepare(string sql)
    {
        if (cache.TryGetValue(sql, out var cached)) { cached.Reset(); return cached; }
        var bytes = SqliteNative.Utf8z(sql);
        nint stmt;
        fixed (byte* p = bytes)
        {
            var rc = SqliteNative.sqlite3_prepare_v2(db, p, bytes.Length, out stmt, 0);
            if (rc != SqliteNative.OK) throw Error("prepare", rc);
        }
        var s = new SqliteStatement(this, stmt);
        cache[sql] = s;
        return s;
    }

    internal SqliteException Error(string op, int rc) => new(op, Path, rc, SqliteNative.Message(db));

    public void Dispose()
    {
        foreach (var s in cache.Values) SqliteNative.sqlite3_finalize(s.Handle);
        cache.Clear();
        SqliteNative.sqlite3_close_v2(db);
    }
}

internal sealed unsafe class SqliteStatement(SqliteDb db, nint handle)
{
    public nint Handle { get; } = handle;

    public void Reset()
    {
        SqliteNative.sqlite3_reset(Handle);
        SqliteNative.sqlite3_clear_bindings(Handle);
    }

    public SqliteStatement Bind(int index, long value)
    {
        SqliteNative.sqlite3_bind_int64(Handle, index, value);
        return this;
    }

    public SqliteStatement Bind(int index, string value)
    {
        // An empty array pins as NULL, which SQLite would bind as SQL NULL: bind "" from a real buffer.
        var bytes = System.Text.Encoding.UTF8.GetBytes(value + "\0");
        fixed (byte* p = bytes) SqliteNative.sqlite3_bind_text(Handle, index, p, bytes.Length - 1, SqliteNative.Transient);
        return this;
    }

    public SqliteStatement Bind(int index, byte[] value)
    {
        if (value.Length == 0)
        {
            byte zero = 0;
            SqliteNative.sqlite3_bind_blob(Handle, index, &zero, 0, SqliteNative.Transient);
            return this;
        }
        fixed (byte* p = value) SqliteNative.sqlite3_bind_blob(Handle, index, p, value.Length, SqliteNative.Transient);
        return this;
    }

    /// <summary>Steps once: true for a row, false when done.</summary>
    public bool Step()
    {
        var rc = SqliteNative.sqlite3_step(Handle);
        if (rc == SqliteNative.ROW) return true;
        if (rc == SqliteNative.DONE) return false;
        var err = db.Error("step", rc);
        SqliteNative.sqlite3_reset(Handle);
        throw err;
    }

    public void Run()
    {
        while (Step()) { }
    }

    public long Int64(int col) => SqliteNative.sqlite3_column_int64(Handle, col);

    public string Text(int col)
    {
        var p = SqliteNative.sqlite3_column_text(Handle, col);
        var n = SqliteNative.sqlite3_column_bytes(Handle, col);
        return p == null ? "" : System.Text.Encoding.UTF8.GetString(p, n);
    }

    public bool IsNull(int col) => SqliteNative.sqlite3_column_type(Handle, col) == 5;

    public byte[] Blob(int col)
    {
        var p = SqliteNative.sqlite3_column_blob(Handle, col);
        var n = SqliteNative.sqlite3_column_bytes(Handle, col);
        return p == null || n == 0 ? [] : new ReadOnlySpan<byte>(p, n).ToArray();
    }
}
