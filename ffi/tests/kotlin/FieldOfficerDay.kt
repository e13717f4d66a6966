// A field officer's day, driven through the Kotlin bindings an Android app uses (JNA on
// the JVM). Started by `ffi/tests/bindings.rs`, which runs the relay and passes, in the
// environment: WARDCHECK_RELAY_URL, WARDCHECK_DEAD_RELAY_URL (nothing listens there),
// WARDCHECK_WORK_DIR, WARDCHECK_PHOTO_GPS / WARDCHECK_PHOTO_PLAIN (camera JPEGs, with and
// without EXIF GPS) and one-time enrolment codes WARDCHECK_CODE_OFFICER,
// WARDCHECK_CODE_COLLEAGUE, WARDCHECK_CODE_SUPERVISOR. Exits non-zero on the first failed
// check; prints "field officer's day: ok" at the end.

import java.io.File
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.system.exitProcess
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.wardcheck.*

fun env(name: String): String = System.getenv(name) ?: throw IllegalStateException("$name is not set")

fun expect(condition: Boolean, what: () -> String) {
    if (!condition) throw AssertionError(what())
}

/** Runs [block] and returns the exception of type [T] it must throw. */
inline fun <reified T : WardcheckException> expectThrows(what: String, block: () -> Unit): T {
    try {
        block()
    } catch (e: WardcheckException) {
        if (e is T) return e
        throw AssertionError("$what: expected ${T::class.simpleName}, got $e")
    }
    throw AssertionError("$what: expected ${T::class.simpleName}, nothing was thrown")
}

class ProgressRecorder : SyncListener {
    val seen = CopyOnWriteArrayList<SyncProgress>()
    override fun onProgress(progress: SyncProgress) {
        seen.add(progress)
    }
}

fun isJpeg(bytes: ByteArray?) =
    bytes != null && bytes.size > 2 && bytes[0] == 0xFF.toByte() && bytes[1] == 0xD8.toByte()

fun day() = runBlocking {
    val relay = env("WARDCHECK_RELAY_URL")
    val work = File(env("WARDCHECK_WORK_DIR"))
    val ward = WardUnit(
        id = "kontum-ngo-may",
        name = "Công an phường Ngô Mây",
        city = "Kon Tum",
        province = "Kon Tum",
    )

    // Morning: the app opens its workspace and enrols the phone with the code from the
    // administrator's QR code.
    val phone = Workspace.open(File(work, "officer").path)
    expectThrows<WardcheckException.Locked>("a second open of the same folder") {
        Workspace.open(File(work, "officer").path)
    }
    expectThrows<WardcheckException.NotEnrolled>("sync before enrolment") { phone.sync() }
    expectThrows<WardcheckException.EnrolmentRefused>("a wrong code") {
        phone.enroll(relay, "AAAA-BBBB-CCCC-DDDD", "Officer's phone")
    }
    expectThrows<WardcheckException.RelayUnreachable>("a relay that is down") {
        phone.enroll(env("WARDCHECK_DEAD_RELAY_URL"), env("WARDCHECK_CODE_OFFICER"), "Officer's phone")
    }
    val enrolment = phone.enroll(relay, env("WARDCHECK_CODE_OFFICER"), "Officer's phone")
    expect(enrolment.userId == "officer-a1") { "enrolled as ${enrolment.userId}" }
    expect(phone.user() == "officer-a1") { "signed in as ${phone.user()}" }
    expect(phone.enrolment()?.relayUrl == relay) { "enrolment ${phone.enrolment()}" }

    // The 2025 assessment from the 2024 template.
    val installed = phone.templates().first { it.template.version == 2024u }
    expect(installed.sample && !installed.retired) { "the built-in 2024 set is a sample" }
    val template = installed.template
    expect(template.criteria.size == 20) { "${template.criteria.size} criteria" }
    val assessment = phone.createAssessment(ward, "2025", TemplateKey(template.id, template.version))
    expectThrows<WardcheckException.AlreadyExists>("the same assessment twice") {
        phone.createAssessment(ward, "2025", TemplateKey(template.id, template.version))
    }
    expect(phone.assessments().single().id == assessment.id()) { "the list has the new assessment" }

    // Photos for c05 (it needs two), straight from the camera.
    expectThrows<WardcheckException.InvalidPhoto>("bytes that are no photo") {
        assessment.addPhoto("c05", "not a photo".toByteArray(), "?", null)
    }
    expectThrows<WardcheckException.InvalidPhoto>("a location off the earth") {
        assessment.addPhoto("c05", File(env("WARDCHECK_PHOTO_PLAIN")).readBytes(), "?", GeoPoint(123.0, 0.0, null))
    }
    expectThrows<WardcheckException.NotAllowed>("submitting without photos") {
        assessment.step("c05", Action.SUBMIT, null)
    }
    val board = assessment.addPhoto("c05", File(env("WARDCHECK_PHOTO_GPS")).readBytes(), "Bảng nội quy", null)
    val fix = GeoPoint(14.3497, 108.0005, 15.0)
    val logbook = assessment.addPhoto("c05", File(env("WARDCHECK_PHOTO_PLAIN")).readBytes(), "Sổ trực ban", fix)
    expect(board.location != null && board.location != fix) { "EXIF GPS wins: ${board.location}" }
    expect(logbook.location == fix) { "the app's fix when EXIF has none: ${logbook.location}" }
    expect(board.width <= 1600u && board.officer == "officer-a1") { "evidence $board" }
    expect(isJpeg(phone.photo(board.thumbnail))) { "the thumbnail comes out as JPEG bytes" }
    val exported = File(work, "board.jpg")
    expect(phone.writePhoto(board.photo, exported.path) && isJpeg(exported.readBytes())) {
        "the evidence comes out as a JPEG file"
    }
    expectThrows<WardcheckException.InvalidInput>("a malformed photo hash") { phone.photo("beef") }

    assessment.setNote("c05", "Nội quy niêm yết tại phòng tiếp dân.")
    expect(assessment.step("c05", Action.SUBMIT, null) == Status.SUBMITTED) { "c05 submitted" }
    expect(assessment.step("c02", Action.START, null) == Status.IN_PROGRESS) { "c02 started" }
    expectThrows<WardcheckException.NotFound>("an unknown criterion") { assessment.setNote("c99", "x") }

    // Sync, watching progress.
    val recorder = ProgressRecorder()
    val report = phone.sync(recorder, SyncHandle())
    expect(report.documentsInSync == 1uL) { "report $report" }
    expect(report.blobsUploaded == 4uL) { "two photos and two thumbnails uploaded: $report" }
    expect(recorder.seen.any { it.phase == SyncPhase.UPLOADS }) { "upload progress heard: ${recorder.seen}" }

    // A cancelled handle stops the sync; so does cancelling the coroutine.
    val cancelled = SyncHandle()
    cancelled.cancel()
    expectThrows<WardcheckException.Cancelled>("a cancelled sync") { phone.sync(null, cancelled) }
    withTimeout(30_000) {
        val job = launch { phone.sync() }
        job.cancel()
        job.join()
    }

    // The supervisor approves c05 on their tablet.
    val supervisor = Workspace.open(File(work, "supervisor").path)
    supervisor.enroll(relay, env("WARDCHECK_CODE_SUPERVISOR"), "Supervisor's tablet")
    supervisor.sync()
    val reviewed = supervisor.assessment(assessment.id())
    expect(reviewed.step("c05", Action.APPROVE, null) == Status.APPROVED) { "approved on the tablet" }
    supervisor.sync()

    // A colleague captions the same photo differently while both are offline.
    val colleague = Workspace.open(File(work, "colleague").path)
    colleague.enroll(relay, env("WARDCHECK_CODE_COLLEAGUE"), "Colleague's phone")
    colleague.sync()
    colleague.assessment(assessment.id()).setCaption("c05", board.photo, "Bảng nội quy (cổng chính)")
    assessment.setCaption("c05", board.photo, "Bảng nội quy, phòng tiếp dân")
    colleague.sync()

    // Evening sync: the approval arrives, and the conflict shows.
    phone.sync()
    val c05 = assessment.criterion("c05")
    expect(c05.status == Status.APPROVED) { "c05 is ${c05.status}" }
    expect(c05.review?.by == "supervisor") { "reviewed by ${c05.review?.by}" }
    expect(c05.evidence.size == 2) { "${c05.evidence.size} photos" }
    val progress = assessment.progress()
    expect(progress.approved == 1u && progress.inProgress == 1u) { "progress $progress" }
    expect(progressSummary(progress) == "1/20 met") { progressSummary(progress) }
    expect(assessment.history("c05").any { it.what == "status:approve" && it.by == "supervisor" }) {
        "the approval is in the history"
    }
    val conflict = assessment.conflicts().single()
    expect(conflict.path == "criteria/c05/evidence/${board.photo}/caption") { "conflict at ${conflict.path}" }
    expect(conflict.values.map { it.by }.toSet() == setOf("officer-a1", "officer-a2")) { "values ${conflict.values}" }
    assessment.settle(conflict.path, FieldValue.Text("Bảng nội quy, phòng tiếp dân"))
    expect(assessment.conflicts().isEmpty()) { "settled" }

    // Full-size photos fetched from the relay on a device that only has thumbnails.
    val fetched = supervisor.fetchPhoto(board.photo)
    expect(isJpeg(fetched) && fetched.contentEquals(exported.readBytes())) { "the supervisor fetches the photo" }
}

fun main() {
    try {
        day()
    } catch (e: Throwable) {
        System.err.println("field officer's day failed: $e")
        e.printStackTrace()
        exitProcess(1)
    }
    println("field officer's day: ok")
    exitProcess(0)
}
