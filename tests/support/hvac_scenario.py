"""Drives coffer's KV v2-compatible API with hvac, as an application would.

Usage: hvac_scenario.py ADDR ROOT_TOKEN READER_TOKEN MOUNT

READER_TOKEN may only read MOUNT. Every step asserts what a client sees;
the first failure exits non-zero with the step that failed.
"""

import sys

import hvac

addr, root_token, reader_token, mount = sys.argv[1:5]
client = hvac.Client(url=addr, token=root_token)
kv = client.secrets.kv.v2

assert client.is_authenticated()
assert not hvac.Client(url=addr, token="cft_not-a-real-token").is_authenticated()

written = kv.create_or_update_secret(path="app/db", secret={"user": "alice", "pass": "s3cret"}, mount_point=mount)
assert written["data"]["version"] == 1, written
read = kv.read_secret_version(path="app/db", mount_point=mount, raise_on_deleted_version=True)
assert read["data"]["data"] == {"user": "alice", "pass": "s3cret"}, read
assert read["data"]["metadata"]["version"] == 1, read

patched = kv.patch(path="app/db", secret={"pass": "rotated"}, mount_point=mount)
assert patched["data"]["version"] == 2, patched
read = kv.read_secret_version(path="app/db", mount_point=mount, raise_on_deleted_version=True)
assert read["data"]["data"] == {"user": "alice", "pass": "rotated"}, read
old = kv.read_secret_version(path="app/db", version=1, mount_point=mount, raise_on_deleted_version=True)
assert old["data"]["data"]["pass"] == "s3cret", old

try:
    kv.create_or_update_secret(path="app/db", secret={"x": "y"}, cas=1, mount_point=mount)
    raise AssertionError("a stale cas was accepted")
except hvac.exceptions.InvalidRequest as error:
    assert "check-and-set" in str(error), error

kv.create_or_update_secret(path="app/api/key", secret={"value": "k1"}, mount_point=mount)
kv.create_or_update_secret(path="top", secret={"value": "t"}, mount_point=mount)
assert sorted(kv.list_secrets(path="", mount_point=mount)["data"]["keys"]) == ["app/", "top"]
assert kv.list_secrets(path="app", mount_point=mount)["data"]["keys"] == ["api/", "db"]

metadata = kv.read_secret_metadata(path="app/db", mount_point=mount)["data"]
assert metadata["current_version"] == 2 and metadata["oldest_version"] == 1, metadata
assert set(metadata["versions"]) == {"1", "2"}, metadata

kv.update_metadata(path="app/db", max_versions=5, custom_metadata={"owner": "payments"}, mount_point=mount)
metadata = kv.read_secret_metadata(path="app/db", mount_point=mount)["data"]
assert metadata["max_versions"] == 5 and metadata["custom_metadata"] == {"owner": "payments"}, metadata

kv.delete_latest_version_of_secret(path="app/db", mount_point=mount)
try:
    kv.read_secret_version(path="app/db", mount_point=mount, raise_on_deleted_version=True)
    raise AssertionError("a deleted version was read")
except hvac.exceptions.InvalidPath:
    pass
kv.undelete_secret_versions(path="app/db", versions=[2], mount_point=mount)
assert kv.read_secret_version(path="app/db", mount_point=mount, raise_on_deleted_version=True)["data"]["data"]["pass"] == "rotated"

kv.destroy_secret_versions(path="app/db", versions=[1], mount_point=mount)
versions = kv.read_secret_metadata(path="app/db", mount_point=mount)["data"]["versions"]
assert versions["1"]["destroyed"] is True and versions["2"]["destroyed"] is False, versions
try:
    kv.read_secret_version(path="app/db", version=1, mount_point=mount, raise_on_deleted_version=True)
    raise AssertionError("a destroyed version was read")
except hvac.exceptions.InvalidPath:
    pass

try:
    kv.read_secret_version(path="app/missing", mount_point=mount, raise_on_deleted_version=True)
    raise AssertionError("a missing path was read")
except hvac.exceptions.InvalidPath:
    pass

reader = hvac.Client(url=addr, token=reader_token).secrets.kv.v2
assert reader.read_secret_version(path="top", mount_point=mount, raise_on_deleted_version=True)["data"]["data"] == {"value": "t"}
for forbidden in (
    lambda: reader.create_or_update_secret(path="top", secret={"value": "no"}, mount_point=mount),
    lambda: reader.delete_metadata_and_all_versions(path="top", mount_point=mount),
    lambda: reader.read_secret_version(path="top", mount_point="elsewhere", raise_on_deleted_version=True),
):
    try:
        forbidden()
        raise AssertionError("a forbidden request was served")
    except hvac.exceptions.Forbidden as error:
        assert "permission denied" in str(error), error

kv.delete_metadata_and_all_versions(path="app/db", mount_point=mount)
try:
    kv.read_secret_metadata(path="app/db", mount_point=mount)
    raise AssertionError("purged metadata was read")
except hvac.exceptions.InvalidPath:
    pass
assert kv.list_secrets(path="app", mount_point=mount)["data"]["keys"] == ["api/"]

health = client.sys.read_health_status(method="GET")
assert health["initialized"] is True and health["sealed"] is False, health
print("ok")
