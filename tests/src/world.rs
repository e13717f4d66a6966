//! The small world the end-to-end tests share: a province, a city, two wards, officers
//! and a supervisor on a relay, and one-time enrolment codes for them.

use crate::Relay;

/// Ward A: Ngô Mây.
pub const WARD_A: &str = "kontum-ngo-may";
/// Ward B: Trần Hưng Đạo.
pub const WARD_B: &str = "kontum-tran-hung-dao";

/// Sets up units and users on a fresh relay.
pub fn populate(relay: &Relay) {
    relay.admin(&[
        "unit",
        "add",
        "--id",
        "kontum",
        "--name",
        "Công an tỉnh Kon Tum",
        "--kind",
        "province",
    ]);
    relay.admin(&[
        "unit",
        "add",
        "--id",
        "kontum-city",
        "--name",
        "TP Kon Tum",
        "--kind",
        "city",
        "--parent",
        "kontum",
    ]);
    relay.admin(&[
        "unit",
        "add",
        "--id",
        WARD_A,
        "--name",
        "Công an phường Ngô Mây",
        "--kind",
        "ward",
        "--parent",
        "kontum-city",
    ]);
    relay.admin(&[
        "unit",
        "add",
        "--id",
        WARD_B,
        "--name",
        "Công an phường Trần Hưng Đạo",
        "--kind",
        "ward",
        "--parent",
        "kontum-city",
    ]);
    for (user, ward) in [
        ("officer-a1", WARD_A),
        ("officer-a2", WARD_A),
        ("officer-a3", WARD_A),
        ("officer-b1", WARD_B),
    ] {
        relay.admin(&[
            "user", "add", "--id", user, "--name", user, "--role", "officer", "--unit", ward,
        ]);
    }
    relay.admin(&[
        "user",
        "add",
        "--id",
        "supervisor",
        "--name",
        "Supervisor",
        "--role",
        "supervisor",
        "--unit",
        "kontum",
    ]);
}

/// A one-time enrolment code for `user`, read from the admin command's output.
pub fn enrolment_code(relay: &Relay, user: &str) -> String {
    let output = relay.admin(&["device", "enrol-code", "--user", user]);
    output
        .split_whitespace()
        .find(|word| {
            let groups: Vec<&str> = word.split('-').collect();
            groups.len() >= 4
                && groups
                    .iter()
                    .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_alphanumeric()))
        })
        .unwrap_or_else(|| panic!("no enrolment code in {output:?}"))
        .to_owned()
}
