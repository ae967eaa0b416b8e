//! The files `osn connect` writes: terrain images, the object list, textures, the summary.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use opensim_regions::scene::{Object, Scene};
use opensim_regions::terrain::Heightmap;
use serde_json::{Value, json};
use uuid::Uuid;

/// Writes an RGBA8 image as PNG.
///
/// # Errors
/// On I/O failure or a buffer that does not match the size.
pub fn write_png(path: &Path, width: u32, height: u32, rgba: &[u8]) -> io::Result<()> {
    let file = BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(io::Error::other)?;
    w.write_image_data(rgba).map_err(io::Error::other)?;
    w.finish().map_err(io::Error::other)
}

/// Shades a heightmap into RGBA8, north up: hypsometric tint by height, lit from the
/// north-west, water below `water_height` in blue.
pub fn shade_terrain(map: &Heightmap, water_height: f32) -> Vec<u8> {
    let (w, h) = (map.width(), map.height());
    let heights = map.as_slice();
    let (mut lo, mut hi) = (f32::MAX, f32::MIN);
    for &v in heights {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let span = (hi - lo).max(1.0);
    let at = |x: i64, y: i64| -> f32 {
        let x = x.clamp(0, i64::from(w) - 1) as u32;
        let y = y.clamp(0, i64::from(h) - 1) as u32;
        map.get(x, y).unwrap_or(0.0)
    };
    let mut out = Vec::with_capacity(w as usize * h as usize * 4);
    // Image row 0 is the north edge; heightmap row 0 is the south edge.
    for row in 0..h {
        let y = i64::from(h - 1 - row);
        for x in 0..i64::from(w) {
            let z = at(x, y);
            let rgb = if z < water_height {
                let depth = ((water_height - z) / 10.0).clamp(0.0, 1.0);
                [
                    (30.0 - 20.0 * depth) as u8,
                    (110.0 - 50.0 * depth) as u8,
                    (190.0 - 60.0 * depth) as u8,
                ]
            } else {
                let t = (z - lo) / span;
                // Green lowlands to brown hills to pale peaks.
                let base = if t < 0.5 {
                    lerp([70.0, 140.0, 60.0], [150.0, 120.0, 70.0], t * 2.0)
                } else {
                    lerp([150.0, 120.0, 70.0], [235.0, 235.0, 230.0], (t - 0.5) * 2.0)
                };
                // Slope towards the light (north-west) brightens, away darkens.
                let dzdx = at(x + 1, y) - at(x - 1, y);
                let dzdy = at(x, y + 1) - at(x, y - 1);
                let light = (1.0 + 0.35 * (-dzdx + dzdy)).clamp(0.4, 1.5);
                [
                    (base[0] * light).clamp(0.0, 255.0) as u8,
                    (base[1] * light).clamp(0.0, 255.0) as u8,
                    (base[2] * light).clamp(0.0, 255.0) as u8,
                ]
            };
            out.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
    }
    out
}

fn lerp(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// The distinct texture ids an object's faces use (the default face first), nil left out.
pub fn object_textures(o: &Object) -> Vec<Uuid> {
    let mut ids = Vec::new();
    if let Some(te) = &o.texture_entry {
        for face in std::iter::once(&te.default).chain(te.faces.iter()) {
            if !face.texture_id.is_nil() && !ids.contains(&face.texture_id) {
                ids.push(face.texture_id);
            }
        }
    }
    ids
}

/// One line of `objects.jsonl`.
pub fn object_json(o: &Object) -> Value {
    let m = &o.motion;
    json!({
        "local_id": o.local_id,
        "full_id": o.full_id.to_string(),
        "pcode": o.pcode,
        "parent_id": o.parent_id,
        "position": [m.position.x, m.position.y, m.position.z],
        "rotation": [m.rotation.x, m.rotation.y, m.rotation.z, m.rotation.w],
        "scale": [o.scale.x, o.scale.y, o.scale.z],
        "textures": object_textures(o).iter().map(Uuid::to_string).collect::<Vec<_>>(),
    })
}

/// Writes every object of the scene, ordered by local id, one JSON object per line.
///
/// # Errors
/// On I/O failure.
pub fn write_objects(path: &Path, scene: &Scene) -> io::Result<usize> {
    let mut objects: Vec<&Object> = scene.iter().collect();
    objects.sort_by_key(|o| o.local_id);
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for o in &objects {
        writeln!(w, "{}", object_json(o))?;
    }
    w.flush()?;
    Ok(objects.len())
}

/// The textures a scene uses, in order of first use by ascending local id.
pub fn scene_textures(scene: &Scene) -> Vec<Uuid> {
    let mut objects: Vec<&Object> = scene.iter().collect();
    objects.sort_by_key(|o| o.local_id);
    let mut ids = Vec::new();
    for o in objects {
        for id in object_textures(o) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opensim_regions::terrain::RegionSize;

    #[test]
    fn shading_puts_north_at_the_top_and_water_in_blue() {
        // A slope rising to the north, under water at the south edge.
        let map = Heightmap::from_fn(RegionSize::LEGACY, |_, y| y as f32 / 4.0);
        let rgba = shade_terrain(&map, 20.0);
        assert_eq!(rgba.len(), 256 * 256 * 4);
        let px = |row: usize, col: usize| &rgba[(row * 256 + col) * 4..][..4];
        // Bottom row is the south edge (height 0): water, blue dominant.
        let south = px(255, 10);
        assert!(south[2] > south[0] && south[2] > south[1], "{south:?}");
        // Top row is the north edge (height ~64): land, not blue dominant.
        let north = px(0, 10);
        assert!(north[2] <= north[0], "{north:?}");
    }

    #[test]
    fn png_round_trips_through_a_decoder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let rgba: Vec<u8> = (0..4 * 3 * 2).map(|i| i as u8).collect();
        write_png(&path, 3, 2, &rgba).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..info.buffer_size()], &rgba[..]);
    }
}
