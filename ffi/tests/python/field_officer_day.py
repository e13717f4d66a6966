"""A field officer's day through the Python bindings (a smaller run than the Kotlin one).

Started by ffi/tests/bindings.rs with the generated `wardcheck` module and the library on
PYTHONPATH and the same environment as FieldOfficerDay.kt. Exits non-zero on the first
failed check; prints "field officer's day: ok" at the end.
"""

import asyncio
import os
import sys

import wardcheck as wc


def env(name):
    value = os.environ.get(name)
    if value is None:
        raise RuntimeError(f"{name} is not set")
    return value


async def expect_error(kind, what, call):
    try:
        await call() if asyncio.iscoroutinefunction(call) else call()
    except kind:
        return
    except wc.WardcheckError as e:
        raise AssertionError(f"{what}: expected {kind.__name__}, got {type(e).__name__}: {e}")
    raise AssertionError(f"{what}: expected {kind.__name__}, nothing was raised")


class Recorder(wc.SyncListener):
    def __init__(self):
        self.seen = []

    def on_progress(self, progress):
        self.seen.append(progress)


async def day():
    relay = env("WARDCHECK_RELAY_URL")
    work = env("WARDCHECK_WORK_DIR")
    ward = wc.WardUnit(id="kontum-ngo-may", name="Công an phường Ngô Mây", city="Kon Tum", province="Kon Tum")

    phone = wc.Workspace.open(os.path.join(work, "officer"))

    async def wrong_code():
        await phone.enroll(relay, "AAAA-BBBB-CCCC-DDDD", "Officer's phone")

    await expect_error(wc.WardcheckError.EnrolmentRefused, "a wrong code", wrong_code)
    enrolment = await phone.enroll(relay, env("WARDCHECK_CODE_OFFICER"), "Officer's phone")
    assert enrolment.user_id == "officer-a1", enrolment

    installed = next(t for t in phone.templates() if t.template.version == 2024)
    assert installed.sample and not installed.retired, "the built-in 2024 set is a sample"
    template = installed.template
    assessment = phone.create_assessment(ward, "2025", wc.TemplateKey(id=template.id, version=template.version))
    await expect_error(
        wc.WardcheckError.InvalidPhoto,
        "bytes that are no photo",
        lambda: assessment.add_photo("c05", b"not a photo", "?", None),
    )
    with open(env("WARDCHECK_PHOTO_GPS"), "rb") as f:
        board = assessment.add_photo("c05", f.read(), "Bảng nội quy", None)
    with open(env("WARDCHECK_PHOTO_PLAIN"), "rb") as f:
        fix = wc.GeoPoint(lat=14.3497, lon=108.0005, accuracy_m=15.0)
        logbook = assessment.add_photo("c05", f.read(), "Sổ trực ban", fix)
    assert logbook.location == fix, logbook.location
    assert phone.photo(board.thumbnail)[:2] == b"\xff\xd8"
    assert assessment.step("c05", wc.Action.SUBMIT, None) == wc.Status.SUBMITTED

    recorder = Recorder()
    report = await phone.sync(recorder, wc.SyncHandle())
    assert report.documents_in_sync == 1 and report.blobs_uploaded == 4, report
    assert recorder.seen, "progress heard"

    supervisor = wc.Workspace.open(os.path.join(work, "supervisor"))
    await supervisor.enroll(relay, env("WARDCHECK_CODE_SUPERVISOR"), "Supervisor's tablet")
    await supervisor.sync()
    supervisor.assessment(assessment.id()).step("c05", wc.Action.APPROVE, None)
    await supervisor.sync()

    await phone.sync()
    c05 = assessment.criterion("c05")
    assert c05.status == wc.Status.APPROVED, c05.status
    assert c05.review.by == "supervisor", c05.review
    assert wc.progress_summary(assessment.progress()) == "1/20 met"
    assert assessment.conflicts() == []


def main():
    try:
        asyncio.run(day())
    except Exception as e:  # report any failure as a non-zero exit
        print(f"field officer's day failed: {type(e).__name__}: {e}", file=sys.stderr)
        raise
    print("field officer's day: ok")


if __name__ == "__main__":
    main()
