// Real-kernel tests share the machine's cgroups and process table: one collection at a time inside
// this project keeps the leak checks meaningful (a test's check never sees another test's containers).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
