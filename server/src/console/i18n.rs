//! The console's words: Vietnamese by default, English on request (a `lang` cookie set
//! by the switch in the header).

use wardcheck_core::model::{Localized, Status};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Vietnamese, the default.
    #[default]
    Vi,
    /// English.
    En,
}

impl Lang {
    /// `vi` or `en`, as in the cookie and the `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// Parses [`Lang::code`]; anything else is `None`.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Self {
        match self {
            Lang::Vi => Lang::En,
            Lang::En => Lang::Vi,
        }
    }

    /// The words in this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Vi => &VI,
            Lang::En => &EN,
        }
    }

    /// A template text in this language.
    pub fn pick(self, text: &Localized) -> &str {
        match self {
            Lang::Vi => &text.vi,
            Lang::En => &text.en,
        }
    }
}

/// Every fixed text of the console, in one language.
/// Each field is named after its English text.
pub struct Texts {
    pub title: &'static str,
    pub switch_to: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub sign_in_failed: &'static str,
    pub locked_out: &'static str,
    pub sign_in_busy: &'static str,
    pub overview: &'static str,
    pub conflicts: &'static str,
    pub unit: &'static str,
    pub city: &'static str,
    pub all: &'static str,
    pub status: &'static str,
    pub search: &'static str,
    pub filter: &'static str,
    pub period: &'static str,
    pub progress: &'static str,
    pub last_sync: &'static str,
    pub last_seen: &'static str,
    pub never: &'static str,
    pub stale_evidence: &'static str,
    pub no_assessment: &'static str,
    pub complete: &'static str,
    pub has_returned: &'static str,
    pub has_submitted: &'static str,
    pub met: &'static str,
    pub submitted: &'static str,
    pub returned: &'static str,
    pub not_started: &'static str,
    pub in_progress: &'static str,
    pub approved: &'static str,
    pub criterion: &'static str,
    pub note: &'static str,
    pub evidence: &'static str,
    pub no_evidence: &'static str,
    pub who_when: &'static str,
    pub captured_at: &'static str,
    pub gps: &'static str,
    pub no_gps: &'static str,
    pub inside_unit: &'static str,
    pub far_from_unit: &'static str,
    pub unit_has_no_location: &'static str,
    pub from_centre: &'static str,
    pub to_reconfirm: &'static str,
    pub signature: &'static str,
    pub verified: &'static str,
    pub unknown_device: &'static str,
    pub bad_signature: &'static str,
    pub not_checked: &'static str,
    pub history: &'static str,
    pub similar_photos: &'static str,
    pub review: &'static str,
    pub approve: &'static str,
    pub return_with_reason: &'static str,
    pub reason: &'static str,
    pub reviewed_by: &'static str,
    pub no_review_possible: &'static str,
    pub no_conflicts: &'static str,
    pub field: &'static str,
    pub keep_this: &'static str,
    pub write_value: &'static str,
    pub settle: &'static str,
    pub progress_csv: &'static str,
    pub evidence_zip: &'static str,
    pub dossier: &'static str,
    pub print: &'static str,
    pub guidance: &'static str,
    pub min_photos: &'static str,
    pub forbidden: &'static str,
    pub not_found: &'static str,
    pub reason_required: &'static str,
    pub review_not_allowed: &'static str,
    pub conflict_gone: &'static str,
    pub failed: &'static str,
    pub indicators: &'static str,
    pub previous: &'static str,
    /// The changes a history lists, by the `what` of their messages.
    pub changes: Changes,
}

/// What a change did, in words (see [`Texts::change`]).
pub struct Changes {
    pub create: &'static str,
    pub start: &'static str,
    pub submit: &'static str,
    pub approve: &'static str,
    pub ret: &'static str,
    pub note: &'static str,
    pub comment: &'static str,
    pub photo_added: &'static str,
    pub caption: &'static str,
    pub photo_confirmed: &'static str,
    pub photo_removed: &'static str,
    pub indicator: &'static str,
    pub settled: &'static str,
}

/// Vietnamese.
pub static VI: Texts = Texts {
    title: "Bảng điều khiển giám sát",
    switch_to: "English",
    sign_in: "Đăng nhập",
    sign_out: "Đăng xuất",
    username: "Tên đăng nhập",
    password: "Mật khẩu",
    sign_in_failed: "Tên đăng nhập hoặc mật khẩu không đúng.",
    locked_out: "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút.",
    sign_in_busy: "Hệ thống đang bận xử lý đăng nhập. Vui lòng thử lại sau giây lát.",
    overview: "Tổng quan",
    conflicts: "Xung đột",
    unit: "Đơn vị",
    city: "Thành phố",
    all: "Tất cả",
    status: "Trạng thái",
    search: "Tìm đơn vị",
    filter: "Lọc",
    period: "Kỳ",
    progress: "Tiến độ",
    last_sync: "Đồng bộ lần cuối",
    last_seen: "Thiết bị hoạt động",
    never: "chưa có",
    stale_evidence: "Ảnh cần xác nhận lại",
    no_assessment: "Chưa có bản tự đánh giá",
    complete: "Đạt đủ tiêu chí",
    has_returned: "Có tiêu chí bị trả lại",
    has_submitted: "Có tiêu chí chờ thẩm định",
    met: "đạt",
    submitted: "chờ thẩm định",
    returned: "trả lại",
    not_started: "chưa bắt đầu",
    in_progress: "đang thực hiện",
    approved: "đạt",
    criterion: "Tiêu chí",
    note: "Ghi chú",
    evidence: "Ảnh minh chứng",
    no_evidence: "Chưa có ảnh",
    who_when: "Người thực hiện, thời gian",
    captured_at: "Chụp lúc",
    gps: "Vị trí GPS",
    no_gps: "không có GPS",
    inside_unit: "trong địa bàn",
    far_from_unit: "xa địa bàn",
    unit_has_no_location: "đơn vị chưa có toạ độ",
    from_centre: "cách trung tâm",
    to_reconfirm: "chuyển từ kỳ trước, cần xác nhận lại",
    signature: "Chữ ký số",
    verified: "hợp lệ",
    unknown_device: "thiết bị lạ",
    bad_signature: "CHỮ KÝ KHÔNG HỢP LỆ",
    not_checked: "chưa kiểm tra",
    history: "Lịch sử thay đổi",
    similar_photos: "Ảnh tương tự ở nơi khác",
    review: "Thẩm định",
    approve: "Công nhận đạt",
    return_with_reason: "Trả lại",
    reason: "Lý do",
    reviewed_by: "Thẩm định bởi",
    no_review_possible: "Chưa có gì để thẩm định: chờ đơn vị gửi tiêu chí.",
    no_conflicts: "Không có xung đột.",
    field: "Trường",
    keep_this: "Chọn",
    write_value: "hoặc nhập giá trị",
    settle: "Giải quyết",
    progress_csv: "Tiến độ (CSV)",
    evidence_zip: "Ảnh minh chứng (ZIP)",
    dossier: "Hồ sơ in",
    print: "In",
    guidance: "Hướng dẫn",
    min_photos: "Số ảnh tối thiểu",
    forbidden: "Bạn không có quyền xem hoặc thay đổi mục này.",
    not_found: "Không tìm thấy trang.",
    reason_required: "Trả lại cần có lý do.",
    review_not_allowed: "Trạng thái hiện tại của tiêu chí không cho phép thao tác này.",
    conflict_gone: "Trường này không còn xung đột.",
    failed: "Không thực hiện được yêu cầu. Vui lòng thử lại.",
    indicators: "Chỉ số",
    previous: "kỳ trước",
    changes: Changes {
        create: "Tạo bản đánh giá",
        start: "Bắt đầu thực hiện",
        submit: "Gửi thẩm định",
        approve: "Công nhận đạt",
        ret: "Trả lại",
        note: "Sửa ghi chú",
        comment: "Góp ý",
        photo_added: "Thêm ảnh minh chứng",
        caption: "Sửa chú thích ảnh",
        photo_confirmed: "Xác nhận lại ảnh",
        photo_removed: "Gỡ ảnh minh chứng",
        indicator: "Cập nhật chỉ số",
        settled: "Giải quyết xung đột",
    },
};

/// English.
pub static EN: Texts = Texts {
    title: "Supervisors' console",
    switch_to: "Tiếng Việt",
    sign_in: "Sign in",
    sign_out: "Sign out",
    username: "User name",
    password: "Password",
    sign_in_failed: "Wrong user name or password.",
    locked_out: "Too many failed sign-ins. Try again in a few minutes.",
    sign_in_busy: "Too many sign-ins at this moment. Try again in a few seconds.",
    overview: "Overview",
    conflicts: "Conflicts",
    unit: "Unit",
    city: "City",
    all: "All",
    status: "Status",
    search: "Search units",
    filter: "Filter",
    period: "Period",
    progress: "Progress",
    last_sync: "Last sync",
    last_seen: "Devices last seen",
    never: "never",
    stale_evidence: "Photos to re-confirm",
    no_assessment: "No assessment yet",
    complete: "All criteria met",
    has_returned: "Has returned criteria",
    has_submitted: "Has criteria to review",
    met: "met",
    submitted: "submitted",
    returned: "returned",
    not_started: "not started",
    in_progress: "in progress",
    approved: "met",
    criterion: "Criterion",
    note: "Note",
    evidence: "Evidence",
    no_evidence: "No photos",
    who_when: "Who and when",
    captured_at: "Captured",
    gps: "GPS",
    no_gps: "no GPS",
    inside_unit: "inside the unit",
    far_from_unit: "far from the unit",
    unit_has_no_location: "the unit has no location",
    from_centre: "from the centre",
    to_reconfirm: "carried over from the previous period, to re-confirm",
    signature: "Signature",
    verified: "verified",
    unknown_device: "unknown device",
    bad_signature: "BAD SIGNATURE",
    not_checked: "not checked",
    history: "History",
    similar_photos: "Similar photos elsewhere",
    review: "Review",
    approve: "Approve",
    return_with_reason: "Return",
    reason: "Reason",
    reviewed_by: "Reviewed by",
    no_review_possible: "Nothing to review: waiting for the unit to submit the criterion.",
    no_conflicts: "No conflicts.",
    field: "Field",
    keep_this: "Keep",
    write_value: "or write a value",
    settle: "Settle",
    progress_csv: "Progress (CSV)",
    evidence_zip: "Evidence (ZIP)",
    dossier: "Printable dossier",
    print: "Print",
    guidance: "Guidance",
    min_photos: "Minimum photos",
    forbidden: "You may not see or change this.",
    not_found: "Page not found.",
    reason_required: "A return needs a reason.",
    review_not_allowed: "The criterion's current status does not allow this.",
    conflict_gone: "This field is not in conflict any more.",
    failed: "The request could not be done. Please try again.",
    indicators: "Indicators",
    previous: "previous",
    changes: Changes {
        create: "Created the assessment",
        start: "Started work",
        submit: "Submitted for review",
        approve: "Approved",
        ret: "Returned",
        note: "Edited the note",
        comment: "Commented",
        photo_added: "Added a photo",
        caption: "Edited a caption",
        photo_confirmed: "Re-confirmed a photo",
        photo_removed: "Removed a photo",
        indicator: "Updated an indicator",
        settled: "Settled a conflict",
    },
};

impl Texts {
    /// A status's name.
    pub fn status(&self, status: Status) -> &'static str {
        match status {
            Status::NotStarted => self.not_started,
            Status::InProgress => self.in_progress,
            Status::Submitted => self.submitted,
            Status::Approved => self.approved,
            Status::Returned => self.returned,
        }
    }

    /// A change's `what` (as its message names it: `status:submit`, `evidence:add`,
    /// `indicator:<key>`, `settle:<field>`, `note`, ...) in words; an unknown one as it is.
    pub fn change(&self, what: &str) -> String {
        let c = &self.changes;
        let (kind, detail) = what.split_once(':').unwrap_or((what, ""));
        let words = match (kind, detail) {
            ("create", _) => c.create,
            ("status", "start") => c.start,
            ("status", "submit") => c.submit,
            ("status", "approve") => c.approve,
            ("status", "return") => c.ret,
            ("note", _) => c.note,
            ("comment", _) => c.comment,
            ("evidence", "add") => c.photo_added,
            ("evidence", "caption") => c.caption,
            ("evidence", "confirm") => c.photo_confirmed,
            ("evidence", "remove") => c.photo_removed,
            ("indicator", key) => return format!("{}: {key}", c.indicator),
            ("settle", field) => return format!("{}: {field}", c.settled),
            _ => return what.to_owned(),
        };
        words.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_is_the_default_and_codes_round_trip() {
        assert_eq!(Lang::default(), Lang::Vi);
        for lang in [Lang::Vi, Lang::En] {
            assert_eq!(Lang::parse(lang.code()), Some(lang));
            assert_ne!(lang.other(), lang);
        }
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::Vi.texts().sign_in, "Đăng nhập");
        assert_eq!(Lang::En.texts().status(Status::Returned), "returned");
    }

    #[test]
    fn changes_read_as_words_and_unknown_ones_as_they_are() {
        let en = Lang::En.texts();
        assert_eq!(en.change("status:submit"), "Submitted for review");
        assert_eq!(en.change("evidence:add"), "Added a photo");
        assert_eq!(en.change("indicator:cases"), "Updated an indicator: cases");
        assert_eq!(Lang::Vi.texts().change("status:return"), "Trả lại");
        assert_eq!(en.change("status:teleport"), "status:teleport");
        assert_eq!(en.change("mystery"), "mystery");
    }
}
