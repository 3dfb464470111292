// One service per class; classes run one after another (they start containers on a shared machine).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
