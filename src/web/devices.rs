//! The "Registered devices" card of the Phone tab and of the admin's user page: what the
//! SIP server says is registered for an extension, read when the page is drawn. When the
//! SIP server cannot be asked, the card says so and the rest of the page is unaffected.

use crate::domain::Extension;
use crate::services::pbx::{DevicesUnavailable, PbxLink};

pub(super) struct DeviceRow {
    pub user_agent: String,
    pub address: String,
    pub expires: String,
}

pub(super) struct DevicesView {
    pub rows: Vec<DeviceRow>,
    /// Why the list could not be read, in words for the page.
    pub unavailable: Option<&'static str>,
}

pub(super) async fn registered(pbx: &PbxLink, extension: &Extension, domain: &str) -> DevicesView {
    match pbx.registered_devices(extension, domain).await {
        Ok(devices) => DevicesView {
            rows: devices
                .into_iter()
                .map(|d| DeviceRow {
                    user_agent: if d.user_agent.is_empty() {
                        "(not given)".to_owned()
                    } else {
                        d.user_agent
                    },
                    address: d.address,
                    expires: match d.expires_in {
                        s if s <= 0 => "renewing now".to_owned(),
                        s if s < 120 => format!("in {s} seconds"),
                        s => format!("in {} minutes", s / 60),
                    },
                })
                .collect(),
            unavailable: None,
        },
        Err(DevicesUnavailable::NotConnected) => DevicesView {
            rows: Vec::new(),
            unavailable: Some(
                "Registered devices are not shown: the provider has not connected the phone system to the portal.",
            ),
        },
        Err(DevicesUnavailable::Unreachable) => DevicesView {
            rows: Vec::new(),
            unavailable: Some(
                "The phone system did not answer, so registered devices cannot be shown right now. Everything else works.",
            ),
        },
    }
}
