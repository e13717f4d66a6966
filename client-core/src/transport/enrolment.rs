//! Enrolment: a one-time code from an administrator turns into this device's token.

use serde::{Deserialize, Serialize};

use super::{Relay, TransportError, http_error};
use crate::model::Role;
use crate::photo::PublicKey;
use crate::{Enrolment, Workspace};

#[derive(Serialize)]
struct EnrolRequest<'a> {
    code: &'a str,
    device_name: &'a str,
    public_key: String,
}

#[derive(Deserialize)]
struct EnrolResponse {
    device_id: String,
    token: String,
    user_id: String,
    role: Role,
    unit_id: String,
}

/// Enrols this device with the relay at `relay_url` using a one-time code from an
/// administrator, registers the device's public key (which verifies its evidence), and
/// keeps the token in the workspace.
pub fn enroll(
    workspace: &Workspace,
    relay_url: &str,
    code: &str,
    device_name: &str,
) -> Result<Enrolment, TransportError> {
    let relay = Relay::new(relay_url, "")?;
    let request = EnrolRequest {
        code: code.trim(),
        device_name,
        public_key: PublicKey::to_string(&workspace.device_public_key()),
    };
    let mut response = relay
        .agent
        .post(&relay.url("/v1/enroll"))
        .send_json(&request)?;
    let body: EnrolResponse = match response.status().as_u16() {
        200 | 201 => response.body_mut().read_json()?,
        401 | 403 => return Err(TransportError::Unauthorized),
        status => return Err(http_error(status, &mut response)),
    };
    let enrolment = Enrolment {
        relay_url: relay.base.clone(),
        device_id: body.device_id,
        token: body.token,
        user_id: body.user_id,
        role: body.role,
        unit_id: body.unit_id,
    };
    workspace.save_enrolment(&enrolment)?;
    Ok(enrolment)
}
