//! Where a photo was taken.

use serde::{Deserialize, Serialize};

use super::PhotoError;

/// A WGS 84 position in decimal degrees, with the horizontal accuracy in metres when
/// the phone gave one.
///
/// [`GeoPoint::new`] and deserialization refuse coordinates off the earth and negative
/// or non-finite accuracies; the fields are public for reading, and a value built by
/// hand can be checked with [`GeoPoint::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawGeoPoint")]
pub struct GeoPoint {
    /// Latitude, -90 (south) to 90 (north).
    pub lat: f64,
    /// Longitude, -180 (west) to 180 (east).
    pub lon: f64,
    /// Horizontal accuracy in metres (EXIF GPSHPositioningError), if known.
    pub accuracy_m: Option<f64>,
}

impl GeoPoint {
    /// A checked position.
    pub fn new(lat: f64, lon: f64, accuracy_m: Option<f64>) -> Result<Self, PhotoError> {
        let point = Self {
            lat,
            lon,
            accuracy_m,
        };
        point.validate()?;
        Ok(point)
    }

    /// Checks the ranges: latitude within ±90, longitude within ±180, accuracy finite
    /// and not negative.
    pub fn validate(&self) -> Result<(), PhotoError> {
        let accuracy_ok = self.accuracy_m.is_none_or(|a| a.is_finite() && a >= 0.0);
        if (-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lon) && accuracy_ok
        {
            Ok(())
        } else {
            Err(PhotoError::InvalidLocation {
                lat: self.lat,
                lon: self.lon,
                accuracy_m: self.accuracy_m,
            })
        }
    }
}

/// The unchecked shape of [`GeoPoint`] on the wire.
#[derive(Deserialize)]
struct RawGeoPoint {
    lat: f64,
    lon: f64,
    #[serde(default)]
    accuracy_m: Option<f64>,
}

impl TryFrom<RawGeoPoint> for GeoPoint {
    type Error = PhotoError;

    fn try_from(raw: RawGeoPoint) -> Result<Self, Self::Error> {
        GeoPoint::new(raw.lat, raw.lon, raw.accuracy_m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked() {
        assert!(GeoPoint::new(21.0285, 105.8542, Some(5.0)).is_ok());
        assert!(GeoPoint::new(-90.0, 180.0, None).is_ok());
        assert!(GeoPoint::new(90.1, 0.0, None).is_err());
        assert!(GeoPoint::new(0.0, -180.5, None).is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0, None).is_err());
        assert!(GeoPoint::new(0.0, f64::INFINITY, None).is_err());
        assert!(GeoPoint::new(0.0, 0.0, Some(-1.0)).is_err());
        assert!(GeoPoint::new(0.0, 0.0, Some(f64::NAN)).is_err());
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let p = GeoPoint::new(10.762622, 106.660172, Some(12.5)).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"lat":10.762622,"lon":106.660172,"accuracy_m":12.5}"#
        );
        assert_eq!(serde_json::from_str::<GeoPoint>(&json).unwrap(), p);
        let no_accuracy: GeoPoint = serde_json::from_str(r#"{"lat":1.0,"lon":2.0}"#).unwrap();
        assert_eq!(no_accuracy.accuracy_m, None);
        assert!(serde_json::from_str::<GeoPoint>(r#"{"lat":91.0,"lon":0.0}"#).is_err());
    }
}
