//! Module classes of the Home Appliance information model (TS-0023, `org.onem2m.common
//! .moduleclass.*`; Release 3 `org.onem2m.home.moduleclass.*`): the ones `deviceLight` is
//! built from. Short names as the SDT tooling derives them (sources in docs/conformance.md).

use super::{custom, DataType, Name, Specialisation, DGT};

/// A percentage (brightness, saturation): 0 to 100.
const PERCENT: DataType = DataType::Integer { min: 0, max: 100 };
/// One colour channel: 0 to 255.
const CHANNEL: DataType = DataType::Integer { min: 0, max: 255 };

/// `binarySwitch` (`binSh`): a power switch, on or off.
pub(super) const BINARY_SWITCH: Specialisation = Specialisation {
    id: "binarySwitch",
    names: &[
        Name {
            wrapper: "cod:binSh",
            cnd: "org.onem2m.common.moduleclass.binarySwitch",
        },
        Name {
            wrapper: "hd:binSh",
            cnd: "org.onem2m.home.moduleclass.binarySwitch",
        },
    ],
    attributes: &[DGT, custom("powSe", "powerState", DataType::Boolean, true)],
    children: &[],
};

/// `brightness` (`brigs`): the brightness of a light, in percent.
pub(super) const BRIGHTNESS: Specialisation = Specialisation {
    id: "brightness",
    names: &[
        Name {
            wrapper: "cod:brigs",
            cnd: "org.onem2m.common.moduleclass.brightness",
        },
        Name {
            wrapper: "hd:brigs",
            cnd: "org.onem2m.home.moduleclass.brightness",
        },
    ],
    attributes: &[DGT, custom("brigs", "brightness", PERCENT, true)],
    children: &[],
};

/// `colour` (`color`): an RGB colour, each channel 0 to 255.
pub(super) const COLOUR: Specialisation = Specialisation {
    id: "colour",
    names: &[
        Name {
            wrapper: "cod:color",
            cnd: "org.onem2m.common.moduleclass.colour",
        },
        Name {
            wrapper: "hd:color",
            cnd: "org.onem2m.home.moduleclass.colour",
        },
    ],
    attributes: &[
        DGT,
        custom("red", "red", CHANNEL, true),
        custom("green", "green", CHANNEL, true),
        custom("blue", "blue", CHANNEL, true),
    ],
    children: &[],
};

/// `colourSaturation` (`colSn`): the saturation of a colour, in percent.
pub(super) const COLOUR_SATURATION: Specialisation = Specialisation {
    id: "colourSaturation",
    names: &[
        Name {
            wrapper: "cod:colSn",
            cnd: "org.onem2m.common.moduleclass.colourSaturation",
        },
        Name {
            wrapper: "hd:colSn",
            cnd: "org.onem2m.home.moduleclass.colourSaturation",
        },
    ],
    attributes: &[DGT, custom("colSn", "colourSaturation", PERCENT, true)],
    children: &[],
};

/// `faultDetection` (`fauDn`): whether the device has a fault, with its code and text.
pub(super) const FAULT_DETECTION: Specialisation = Specialisation {
    id: "faultDetection",
    names: &[
        Name {
            wrapper: "cod:fauDn",
            cnd: "org.onem2m.common.moduleclass.faultDetection",
        },
        Name {
            wrapper: "hd:fauDn",
            cnd: "org.onem2m.home.moduleclass.faultDetection",
        },
    ],
    attributes: &[
        DGT,
        custom("sus", "status", DataType::Boolean, true),
        custom("code", "code", DataType::INTEGER, false),
        custom("dc", "description", DataType::String, false),
    ],
    children: &[],
};
