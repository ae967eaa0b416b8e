//! Prints the byte budget of each `.j2c` file given on the command line.

use opensim_textures::{Codestream, Limits};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path)?;
        let cs = Codestream::parse(&bytes, &Limits::default())?;
        let b = cs.budget();
        let h = cs.header();
        println!(
            "{path}: {} bytes, {}x{}, {} comps, {} layers, {:?}, {} packets, end {:?}",
            bytes.len(),
            h.siz.width(),
            h.siz.height(),
            h.siz.components.len(),
            h.cod.layers,
            h.cod.progression,
            b.packets,
            b.stream_end
        );
        for l in &b.levels {
            println!(
                "  discard {} ({}x{}): {} bytes ({:.1}%) {:?}",
                l.discard,
                l.width,
                l.height,
                l.bytes,
                100.0 * l.bytes as f64 / bytes.len() as f64,
                l.exactness
            );
        }
        for l in &b.layers {
            println!("  layers {}: {} bytes {:?}", l.layers, l.bytes, l.exactness);
        }
    }
    Ok(())
}
