"""What tests share: fakes, LXD reply builders, the raw LXD client and helpers, each in the
module named for what it holds. No test module imports another test module; tests/README.md
says where a new fake or helper goes.

* `fake_lxd`: `FakeLXD` (LXD's REST API for `make_unit_app(lxd_handler=fake)`),
  `fake_lxd_handler` (the smallest such LXD), `FakeEventStream` (its `/1.0/events`).
* `lxd_replies`: LXD's reply envelopes (`sync`, `error`, `started`) and operation objects.
* `raw_lxd`: the raw LXD client (`lxd_raw`) and what tests do straight at LXD.
* `auth`: the test users (`auth_for(app)`), their password, the JWT secret, the metrics token.
* `api`: checks of this API's own answers (the error shape, a 202's operation reference).
* `images`, `projects`: integration helpers for those resources.
* `routes`: the app's routes; `role_table`: API.md's least role of each route.
* `lxd_sandbox`: finding (or starting) the real LXD daemon.
* `ws`, `waiting`: WebSocket and polling helpers.
"""
