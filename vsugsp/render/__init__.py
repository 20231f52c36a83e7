"""``vsugsp render``: a long render cut into chunks of output frames, run as
Ray tasks on one or many machines, resumable from a manifest in the work dir,
stitched by remux (DESIGN §8, "Beyond one machine: Ray").

Modules, one concern each: ``plan`` (pure chunk and worker arithmetic),
``manifest`` (the resumable record of finished chunks), ``tasks`` (the work
of the Ray task that renders one chunk), ``board`` (the progress actor the
tasks report to), ``stitch`` (remux of the chunks into one file), ``run``
(the driver: Ray cluster, submitting chunks, writing them, stitching) and
``cli`` (the subcommand).
"""
