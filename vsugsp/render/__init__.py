"""``vsugsp render``: a long render cut into chunks of output frames, run as
Ray tasks on one or many machines, resumable from a manifest in the work dir,
stitched by remux (DESIGN §8, "Beyond one machine: Ray").

Modules, one concern each: ``plan`` (pure chunk arithmetic), ``manifest``
(the resumable record of finished chunks), ``tasks`` (the Ray task that
renders one chunk), ``stitch`` (remux of the chunks into one file),
``run`` (the driver: cluster, scheduling, progress) and ``cli`` (the
subcommand).
"""
