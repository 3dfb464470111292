using Berth.Engine.Build;

namespace Berth.Engine.Tests;

/// <summary>The Dockerfile parser and word processing (pure logic, no kernel).</summary>
public class DockerfileParserTests
{
    static readonly Dictionary<string, string> Env = new() { ["A"] = "one", ["EMPTY"] = "", ["P"] = "/usr/bin" };

    [Fact]
    public void Comments_continuations_and_forms()
    {
        var df = Dockerfile.Parse("""
            # syntax=docker/dockerfile:1
            # a comment
            ARG BASE=busybox
            FROM ${BASE} AS build
            RUN echo a \
              # a comment inside the continuation
                && echo b
            CMD ["sh", "-c", "echo hi"]
            ENTRYPOINT echo shell form
            copy --chown=1:2 --from=x a b /dst/

            FROM build
            """);
        Assert.Single(df.MetaArgs);
        Assert.Equal(2, df.Stages.Count);
        var s = df.Stages[0];
        Assert.Equal("build", s.Name);
        Assert.Equal("${BASE}", s.BaseName);
        Assert.Equal("RUN", s.Instructions[0].Keyword);
        Assert.Equal("echo a     && echo b", s.Instructions[0].Args); // continuation lines keep their indentation, as docker prints them
        Assert.Equal(5, s.Instructions[0].Line);
        Assert.Equal(["sh", "-c", "echo hi"], s.Instructions[1].Json);
        Assert.Null(s.Instructions[2].Json);
        Assert.Equal("COPY", s.Instructions[3].Keyword);
        Assert.Equal("1:2", s.Instructions[3].Flag("chown"));
        Assert.Equal("x", s.Instructions[3].Flag("from"));
        Assert.Equal("a b /dst/", s.Instructions[3].Args);
        Assert.Equal("build", df.Stages[1].BaseName);
    }

    [Fact]
    public void Escape_directive_changes_the_continuation_character()
    {
        var df = Dockerfile.Parse("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo x\n");
        Assert.Equal('`', df.Escape);
        Assert.Equal("dir c:\\   && echo x", df.Stages[0].Instructions[0].Args);
    }

    [Fact]
    public void Invalid_json_falls_back_to_the_shell_form()
    {
        var df = Dockerfile.Parse("FROM scratch\nCMD [\"unterminated\n");
        Assert.Null(df.Stages[0].Instructions[0].Json);
        Assert.Equal("[\"unterminated", df.Stages[0].Instructions[0].Args);
    }

    [Theory]
    [InlineData("FROM scratch\nFROB x\n", "dockerfile parse error on line 2: unknown instruction: FROB")]
    [InlineData("RUN echo\nFROM scratch\n", "dockerfile parse error on line 1: no build stage in current context")]
    [InlineData("FROM a b\n", "dockerfile parse error on line 1: FROM requires either one or three arguments")]
    [InlineData("FROM scratch\nCOPY --bogus=1 a b\n", "dockerfile parse error on line 2: unknown flag: --bogus for COPY")]
    [InlineData("FROM scratch\nSHELL /bin/bash\n", "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form")]
    [InlineData("FROM scratch\nENV\n", "dockerfile parse error on line 2: ENV requires at least one argument")]
    [InlineData("# just a comment\n", "the Dockerfile has no FROM instruction")]
    [InlineData("# escape=x\nFROM scratch\n", "dockerfile parse error on line 1: invalid escape token")]
    public void Bad_input_names_the_line(string text, string message)
    {
        var e = Assert.Throws<DockerfileException>(() => Dockerfile.Parse(text));
        Assert.StartsWith(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("$A", "one")]
    [InlineData("${A}x", "onex")]
    [InlineData("${MISSING:-dflt}", "dflt")]
    [InlineData("${EMPTY:-dflt}", "dflt")]
    [InlineData("${EMPTY-dflt}", "")]
    [InlineData("${A:+set}", "set")]
    [InlineData("${MISSING:+set}", "")]
    [InlineData("'$A'", "$A")]
    [InlineData("\"$A b\"", "one b")]
    [InlineData("\\$A", "$A")]
    [InlineData("${MISSING:-$P/x}", "/usr/bin/x")]
    [InlineData("a$", "a$")]
    public void Words_expand_as_docker(string input, string expected) =>
        Assert.Equal(expected, new ShellWords().Word(input, Env));

    [Fact]
    public void Env_and_label_key_values()
    {
        var w = new ShellWords();
        Assert.Equal([("K", "v w x")], w.KeyValues("K v w x", "ENV", Env));
        Assert.Equal([("K", "one two"), ("L", "b c"), ("M", "x")], w.KeyValues("K=\"$A two\" L=b\\ c M=x", "ENV", Env));
        Assert.Equal(["a", "b c", "one"], w.Split("a \"b c\" $A", Env));
        Assert.Throws<DockerfileException>(() => w.Word("${A", Env));
        Assert.Throws<DockerfileException>(() => w.Word("\"open", Env));
    }

    [Theory]
    [InlineData("*.txt", "a.txt", true)]
    [InlineData("*.txt", "d/a.txt", false)]
    [InlineData("**/*.txt", "d/e/a.txt", true)]
    [InlineData("d", "d/e/a.txt", true)]
    [InlineData("a?c", "abc", true)]
    [InlineData("[ab].md", "b.md", true)]
    public void Dockerignore_patterns(string pattern, string path, bool ignored)
    {
        var dir = Directory.CreateTempSubdirectory("berth-ignore-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, ".dockerignore"), "# comment\n" + pattern + "\n");
            using var ctx = BuildContext.FromDirectory(dir);
            Assert.Equal(ignored, ctx.IsIgnored(path));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Dockerignore_exceptions_win_when_last()
    {
        var dir = Directory.CreateTempSubdirectory("berth-ignore-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, ".dockerignore"), "*.md\n!README.md\n");
            using var ctx = BuildContext.FromDirectory(dir);
            Assert.True(ctx.IsIgnored("CHANGES.md"));
            Assert.False(ctx.IsIgnored("README.md"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("../x", true)]
    [InlineData("a/../../x", true)]
    [InlineData("a/../x", false)]
    [InlineData("./x", false)]
    public void Paths_above_the_context_are_detected(string path, bool escapes) => Assert.Equal(escapes, BuildContext.Escapes(path));
}
