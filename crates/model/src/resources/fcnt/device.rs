//! Device classes of the Home Appliance information model (TS-0023,
//! `org.onem2m.common.device.*`; Release 3 `org.onem2m.home.device.*`). A device class has
//! no data of its own: its module classes are its flexContainer children.

use super::{Name, Specialisation};

/// `deviceLight` (`devLt`; Release 3 `deLit`): a light, switched, dimmed and coloured
/// through its module classes.
pub(super) const DEVICE_LIGHT: Specialisation = Specialisation {
    id: "deviceLight",
    names: &[
        Name {
            wrapper: "cod:devLt",
            cnd: "org.onem2m.common.device.deviceLight",
        },
        Name {
            wrapper: "hd:deLit",
            cnd: "org.onem2m.home.device.deviceLight",
        },
    ],
    attributes: &[],
    children: &[
        "faultDetection",
        "binarySwitch",
        "colour",
        "colourSaturation",
        "brightness",
    ],
};
