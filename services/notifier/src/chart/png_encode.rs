//! Encodes an RGB pixel buffer as a PNG file in memory.

/// Encodes `rgb` (3 bytes per pixel, row by row) of `width` x `height`.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|error| format!("writing the PNG header failed: {error}"))?;
    writer
        .write_image_data(rgb)
        .map_err(|error| format!("encoding the PNG image failed: {error}"))?;
    writer
        .finish()
        .map_err(|error| format!("finishing the PNG image failed: {error}"))?;
    Ok(bytes)
}
