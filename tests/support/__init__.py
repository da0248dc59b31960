"""What tests share: fakes, reply builders, clients and helpers. No test module imports another
test module; what two test files need lives here, in the module named for what it holds.

* `auth`: the test users (`auth_for(app)`), their password, the JWT secret and metrics token.
* `fake_lxd`: fakes of LXD itself: `FakeLXD` (its REST API, for `make_unit_app(lxd_handler=)`),
  `fake_lxd_handler` (the smallest such LXD) and `FakeEventStream` (its `/1.0/events`).
* `lxd_replies`: LXD's reply envelopes (`sync`, `error`, `started`) and operation objects, as
  LXD 5.x sends them; build every mocked LXD answer from these.
* `raw_lxd`: the plain httpx client on LXD's socket that integration tests read back with
  (`lxd_raw`), and what they do straight at LXD (create, delete, wait, clean up).
* `api`: checks of this API's own answers (the error shape, a 202's operation reference).
* `images`, `projects`: integration helpers for those resources (test images, projects).
* `routes`: walking the app's routes; `role_table`: API.md's least role of each route.
* `lxd_sandbox`: finding (or starting) the real LXD daemon.
* `ws`, `waiting`: WebSocket and polling helpers.

Fixtures stay in the `conftest.py` files (pytest finds them there); they may import from here.
A helper used by one test file stays in that file.
"""
