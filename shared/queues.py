"""Queue and task names: the one place that spells them."""

GPU = "gpu"
CPU = "cpu"
STITCH = "stitch"
WEBHOOKS = "webhooks"
QUEUES = (GPU, CPU, STITCH, WEBHOOKS)

GENERATE_CHUNK = "gpu.generate_chunk"
DECODE_CHUNK = "cpu.decode_chunk"
RECONCILE = "cpu.reconcile"
STITCH_JOB = "stitch.stitch_job"
DELIVER_WEBHOOK = "webhooks.deliver"

# Redis keys Lyre writes itself (Celery owns the queue lists above).
RECONCILER_HEARTBEAT_KEY = "lyre:reconciler:last-run"
