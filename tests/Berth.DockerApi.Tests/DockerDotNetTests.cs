using Docker.DotNet;
using Docker.DotNet.Models;

namespace Berth.DockerApi.Tests;

/// <summary>Docker.DotNet (the C# client Testcontainers builds on) against the service.</summary>
public sealed class DockerDotNetTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    [Fact]
    public async Task Create_start_list_inspect_wait_remove_from_csharp()
    {
        fx.DockerOk("pull", fx.Image);
        using var client = new DockerClientConfiguration(new Uri("unix://" + fx.Socket)).CreateClient(new System.Version(1, 41));
        var version = await client.System.GetVersionAsync();
        Assert.Equal("1.47", version.APIVersion);
        var created = await client.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = fx.Image, Name = "dotnet1", Cmd = ["sh", "-c", "echo from-dotnet; sleep 30"], Labels = new Dictionary<string, string> { ["by"] = "dotnet" },
        });
        Assert.Equal(64, created.ID.Length);
        try
        {
            Assert.True(await client.Containers.StartContainerAsync(created.ID, new ContainerStartParameters()));
            var list = await client.Containers.ListContainersAsync(new ContainersListParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { ["by=dotnet"] = true } },
            });
            var one = Assert.Single(list);
            Assert.Equal(created.ID, one.ID);
            Assert.Equal("running", one.State);
            Assert.Contains("/dotnet1", one.Names);
            var inspect = await client.Containers.InspectContainerAsync("dotnet1");
            Assert.True(inspect.State.Running);
            Assert.Equal(fx.Image, inspect.Config.Image);
            // the berth CLI sees the same container
            Assert.Contains("dotnet1", fx.Berth("ps").Stdout);
            await client.Containers.KillContainerAsync(created.ID, new ContainerKillParameters { Signal = "SIGKILL" });
            var wait = await client.Containers.WaitContainerAsync(created.ID);
            Assert.Equal(137, wait.StatusCode);
        }
        finally
        {
            await client.Containers.RemoveContainerAsync(created.ID, new ContainerRemoveParameters { Force = true });
        }
        await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => client.Containers.InspectContainerAsync(created.ID));
    }
}
