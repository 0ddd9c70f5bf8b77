"""Progressive delivery in the server: a candidate version beside the stable one, judged on live traffic.

Per model, a **rollout** has a stable and a candidate version and a policy:

* ``canary`` — a ``share`` of the requests that name no version is answered by the candidate. Sticky:
  a request carrying ``X-Client-Key`` (or, failing that, an API key: its id) always lands on the same
  side — a hash of the key, the model and the candidate version, compared with the share — so one
  customer does not flip between two models. Requests without a key are split at random.
* ``shadow`` — every such request is answered by the stable version; afterwards the candidate scores
  the same rows in a thread of its own (``shipml-shadow``), at most ``shadow_queue`` requests behind
  (beyond that the comparison is dropped and counted: the stable path never waits for the candidate,
  and a candidate that raises only fails its own comparison). Both scores are compared and logged.

Every answer says which version gave it (``version`` on ``/predict``, ``model_version`` in v2).
After each request the candidate answered (or scored in the shadow) the rollout records, per version,
success, scoring time and the positive-class score, and — after a failure, every 10th request and at
``min_requests`` — asks :func:`shipml.release.analysis.analyse`. ``abort`` routes everything back to
stable at once (the rollback) and records why; ``promote`` makes the candidate what unversioned
requests get. A version named in the request (``?version=``, ``/versions/{v}``) is never rerouted.

Configured through the admin routes (``/admin/models/{name}/rollout``: always behind the API key; with
no key configured they answer 403, disabled) or, for every new version, through settings:
``SHIPML_ROLLOUT_POLICY=canary`` makes a newly loaded version of a served model a candidate instead of
the default. With ``--workers N`` every worker runs the same rollouts (:mod:`.shared`: a state file in
the server's shared folder, changed under a lock; each worker syncs every 0.25 s and publishes its
counts; the analysis decides once, on every worker's traffic added up; an admin request answers once
every worker has applied it). The shared state lives as long as the server. A rollback lasts until the
next rollout of that model; remove or replace the bad version's folder to make it permanent across restarts.

Modules: :mod:`.models` (the admin API's pydantic bodies), :mod:`.state` (one rollout: routing arm,
counts, decisions, metrics), :mod:`.shadow` (the bounded shadow scorer), :mod:`.shared` (the state the
workers of one server share: files), :mod:`.extension` (the server extension: routing, control, the
admin routes, the workers' sync).
"""

from shipml.serving.rollout.extension import RolloutExtension, admin_router
from shipml.serving.rollout.models import RolloutEvent, RolloutRequest, RolloutStatus, ShadowPair
from shipml.serving.rollout.state import Arm, Rollout, RolloutMetrics, bucket

__all__ = ["Arm", "Rollout", "RolloutEvent", "RolloutExtension", "RolloutMetrics", "RolloutRequest",
           "RolloutStatus", "ShadowPair", "admin_router", "bucket"]
