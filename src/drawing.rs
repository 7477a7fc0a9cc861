//! Drawings on a frame: pure shapes in normalised coordinates.
//!
//! A shape is what one stroke of a tool leaves: a pen line, an arrow or a
//! rectangle. Coordinates run from (0, 0) at the top left of the picture
//! to (1, 1) at the bottom right, so a drawing made on a 640×360 stream
//! lands in the same place on a 4K still. The width is a fraction of the
//! picture's height for the same reason. The eraser is not a shape: it
//! removes whole shapes, which keeps the record append-only and a late
//! joiner's picture exactly the author's.
//!
//! [`Shape::paint`] rasterizes onto an RGB buffer, for the report's stills.

/// The most points one pen stroke may carry: about 30 s of drawing at
/// 60 Hz, far more than a circled detail needs.
pub const MAX_POINTS: usize = 2000;
/// Widths, as a fraction of the picture height.
pub const MIN_WIDTH: f32 = 0.001;
pub const MAX_WIDTH: f32 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    Pen,
    Arrow,
    Rect,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Pen => "pen",
            Tool::Arrow => "arrow",
            Tool::Rect => "rect",
        }
    }

    pub fn from_name(name: &str) -> Option<Tool> {
        match name {
            "pen" => Some(Tool::Pen),
            "arrow" => Some(Tool::Arrow),
            "rect" => Some(Tool::Rect),
            _ => None,
        }
    }
}

/// An sRGB colour, written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Colour(pub [u8; 3]);

impl Colour {
    pub fn parse(text: &str) -> Option<Colour> {
        let hex = text.strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Colour([byte(0)?, byte(2)?, byte(4)?]))
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

/// Why a shape was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("unknown tool {0:?}: use pen, arrow or rect")]
    UnknownTool(String),
    #[error("a colour is written #rrggbb")]
    BadColour,
    #[error("a width is a fraction of the picture height, {MIN_WIDTH} to {MAX_WIDTH}")]
    BadWidth,
    #[error("a pen stroke has 1 to {MAX_POINTS} points; it had {0}")]
    TooManyPoints(usize),
    #[error("an arrow or a rectangle has exactly 2 points")]
    WrongPointCount,
    #[error("points lie within the picture: 0 to 1 on each axis")]
    PointOutside,
}

/// A piece of a shape still being drawn, which the room sees before the
/// author lets go: the style, and the points from index `from` of the
/// whole stroke on. A whole shape is the piece from 0 with every point,
/// so the two are checked by the same rules.
#[derive(Debug, Clone, PartialEq)]
pub struct StrokePart {
    /// The style, and only this piece's points.
    pub shape: Shape,
    pub from: usize,
}

impl StrokePart {
    pub fn new(
        tool: &str,
        colour: &str,
        width: f32,
        from: usize,
        points: Vec<[f32; 2]>,
    ) -> Result<StrokePart, ShapeError> {
        let tool = Tool::from_name(tool).ok_or_else(|| ShapeError::UnknownTool(tool.into()))?;
        let colour = Colour::parse(colour).ok_or(ShapeError::BadColour)?;
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
            return Err(ShapeError::BadWidth);
        }
        let reaches = from.saturating_add(points.len());
        match tool {
            Tool::Pen if points.is_empty() || reaches > MAX_POINTS => {
                return Err(ShapeError::TooManyPoints(reaches))
            }
            // Both points travel every time: the second moves with the
            // pointer until it is let go.
            Tool::Arrow | Tool::Rect if from != 0 || points.len() != 2 => {
                return Err(ShapeError::WrongPointCount)
            }
            _ => {}
        }
        let inside = |v: f32| (0.0..=1.0).contains(&v);
        if !points.iter().all(|[x, y]| inside(*x) && inside(*y)) {
            return Err(ShapeError::PointOutside);
        }
        Ok(StrokePart {
            shape: Shape {
                tool,
                colour,
                width,
                points,
            },
            from,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub tool: Tool,
    pub colour: Colour,
    pub width: f32,
    pub points: Vec<[f32; 2]>,
}

impl Shape {
    /// Checks a shape as a client sent it.
    pub fn new(
        tool: &str,
        colour: &str,
        width: f32,
        points: Vec<[f32; 2]>,
    ) -> Result<Shape, ShapeError> {
        StrokePart::new(tool, colour, width, 0, points).map(|part| part.shape)
    }

    /// The segments the shape is drawn with, in normalised coordinates.
    /// `aspect` is width / height of the picture, so that an arrow's head
    /// keeps its angle on any frame.
    pub fn segments(&self, aspect: f32) -> Vec<([f32; 2], [f32; 2])> {
        match self.tool {
            Tool::Pen if self.points.len() == 1 => vec![(self.points[0], self.points[0])],
            Tool::Pen => self.points.windows(2).map(|w| (w[0], w[1])).collect(),
            Tool::Rect => {
                let [[x0, y0], [x1, y1]] = [self.points[0], self.points[1]];
                vec![
                    ([x0, y0], [x1, y0]),
                    ([x1, y0], [x1, y1]),
                    ([x1, y1], [x0, y1]),
                    ([x0, y1], [x0, y0]),
                ]
            }
            Tool::Arrow => {
                let (tail, tip) = (self.points[0], self.points[1]);
                // Work in height units so that the head is not sheared.
                let dx = (tip[0] - tail[0]) * aspect;
                let dy = tip[1] - tail[1];
                let length = (dx * dx + dy * dy).sqrt();
                let mut segments = vec![(tail, tip)];
                if length > 0.0 {
                    // A quarter of the arrow, up to 0.08, but never
                    // shorter than three line widths (a wide line's
                    // floor is above 0.08: the floor wins).
                    let head = (length * 0.25).min(0.08).max(self.width * 3.0);
                    let (ux, uy) = (dx / length, dy / length);
                    for side in [-1.0f32, 1.0] {
                        // 30° either side of the shaft, pointing back.
                        let (c, s) = (0.866f32, 0.5f32 * side);
                        let bx = -(ux * c - uy * s) * head;
                        let by = -(ux * s + uy * c) * head;
                        segments.push((tip, [tip[0] + bx / aspect, tip[1] + by]));
                    }
                }
                segments
            }
        }
    }

    /// Draws the shape onto a packed RGB picture (3 bytes a pixel).
    pub fn paint(&self, rgb: &mut [u8], width: usize, height: usize) {
        if width == 0 || height == 0 || rgb.len() < width * height * 3 {
            return;
        }
        let (w, h) = (width as f32, height as f32);
        let radius = (self.width * h / 2.0).max(0.75);
        for (a, b) in self.segments(w / h) {
            let (ax, ay, bx, by) = (a[0] * w, a[1] * h, b[0] * w, b[1] * h);
            let x_lo = (ax.min(bx) - radius).floor().max(0.0) as usize;
            let x_hi = ((ax.max(bx) + radius).ceil() as usize).min(width - 1);
            let y_lo = (ay.min(by) - radius).floor().max(0.0) as usize;
            let y_hi = ((ay.max(by) + radius).ceil() as usize).min(height - 1);
            for y in y_lo..=y_hi {
                for x in x_lo..=x_hi {
                    let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                    if distance_to_segment(px, py, ax, ay, bx, by) <= radius {
                        let at = (y * width + x) * 3;
                        rgb[at..at + 3].copy_from_slice(&self.colour.0);
                    }
                }
            }
        }
    }
}

fn distance_to_segment(px: f32, py: f32, ax: f32, ay: f32, bx: f32, by: f32) -> f32 {
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0)
    };
    let (cx, cy) = (ax + t * dx, ay + t * dy);
    ((px - cx).powi(2) + (py - cy).powi(2)).sqrt()
}

/// Points as the record keeps them: little-endian `f32` pairs.
pub fn encode_points(points: &[[f32; 2]]) -> Vec<u8> {
    points
        .iter()
        .flat_map(|[x, y]| x.to_le_bytes().into_iter().chain(y.to_le_bytes()))
        .collect()
}

pub fn decode_points(bytes: &[u8]) -> Vec<[f32; 2]> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let f = |i: usize| f32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
            [f(0), f(4)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pen(points: Vec<[f32; 2]>) -> Result<Shape, ShapeError> {
        Shape::new("pen", "#ff3300", 0.01, points)
    }

    #[test]
    fn shapes_are_checked() {
        assert!(pen(vec![[0.0, 0.0], [1.0, 1.0]]).is_ok());
        assert_eq!(pen(vec![]), Err(ShapeError::TooManyPoints(0)));
        assert_eq!(
            pen(vec![[0.5, 0.5]; MAX_POINTS + 1]),
            Err(ShapeError::TooManyPoints(MAX_POINTS + 1))
        );
        assert_eq!(pen(vec![[1.01, 0.5]]), Err(ShapeError::PointOutside));
        assert_eq!(pen(vec![[f32::NAN, 0.5]]), Err(ShapeError::PointOutside));
        assert_eq!(
            Shape::new("arrow", "#ffffff", 0.01, vec![[0.1, 0.1]]),
            Err(ShapeError::WrongPointCount)
        );
        assert_eq!(
            Shape::new("rect", "#fff", 0.01, vec![[0.1, 0.1], [0.2, 0.2]]),
            Err(ShapeError::BadColour)
        );
        assert_eq!(
            Shape::new("rect", "#ffffff", 0.5, vec![[0.1, 0.1], [0.2, 0.2]]),
            Err(ShapeError::BadWidth)
        );
        assert_eq!(
            Shape::new("lasso", "#ffffff", 0.01, vec![]),
            Err(ShapeError::UnknownTool("lasso".into()))
        );
    }

    #[test]
    fn a_stroke_in_progress_obeys_the_whole_shapes_rules() {
        let part = |tool: &str, from: usize, points: Vec<[f32; 2]>| {
            StrokePart::new(tool, "#ff3300", 0.01, from, points)
        };
        assert_eq!(part("pen", 5, vec![[0.5, 0.5]]).unwrap().from, 5);
        assert!(part("pen", MAX_POINTS - 1, vec![[0.5, 0.5]]).is_ok());
        assert_eq!(
            part("pen", MAX_POINTS - 1, vec![[0.5, 0.5]; 2]),
            Err(ShapeError::TooManyPoints(MAX_POINTS + 1))
        );
        assert_eq!(
            part("pen", usize::MAX, vec![[0.5, 0.5]]),
            Err(ShapeError::TooManyPoints(usize::MAX))
        );
        assert_eq!(part("pen", 3, vec![]), Err(ShapeError::TooManyPoints(3)));
        assert!(part("arrow", 0, vec![[0.1, 0.1], [0.2, 0.2]]).is_ok());
        assert_eq!(
            part("rect", 2, vec![[0.1, 0.1], [0.2, 0.2]]),
            Err(ShapeError::WrongPointCount)
        );
        assert_eq!(
            part("pen", 0, vec![[0.5, -0.1]]),
            Err(ShapeError::PointOutside)
        );
    }

    #[test]
    fn colours_round_trip() {
        let c = Colour::parse("#0A7fE3").unwrap();
        assert_eq!(c.0, [0x0a, 0x7f, 0xe3]);
        assert_eq!(c.to_string(), "#0a7fe3");
        assert_eq!(Colour::parse("0a7fe3"), None);
        assert_eq!(Colour::parse("#0a7fé3"), None);
    }

    #[test]
    fn a_rectangle_paints_its_outline_and_not_its_inside() {
        let (w, h) = (100, 50);
        let mut rgb = vec![0u8; w * h * 3];
        Shape::new("rect", "#ff0000", 0.04, vec![[0.2, 0.2], [0.8, 0.8]])
            .unwrap()
            .paint(&mut rgb, w, h);
        let px = |x: usize, y: usize| &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
        assert_eq!(px(20, 10), [255, 0, 0], "corner");
        assert_eq!(px(50, 40), [255, 0, 0], "bottom edge");
        assert_eq!(px(50, 25), [0, 0, 0], "inside");
        assert_eq!(px(2, 2), [0, 0, 0], "outside");
    }

    #[test]
    fn an_arrow_has_a_head_at_its_tip() {
        let (w, h) = (200, 100);
        let mut rgb = vec![0u8; w * h * 3];
        let arrow = Shape::new("arrow", "#00ff00", 0.01, vec![[0.1, 0.5], [0.9, 0.5]]).unwrap();
        assert_eq!(arrow.segments(2.0).len(), 3);
        arrow.paint(&mut rgb, w, h);
        let lit = |x: usize, y: usize| rgb[(y * w + x) * 3 + 1] == 255;
        assert!(lit(100, 50), "shaft");
        // The barbs run back from the tip, above and below the shaft.
        let barb_x = 175;
        assert!((30..50).any(|y| lit(barb_x, y)), "upper barb");
        assert!((51..70).any(|y| lit(barb_x, y)), "lower barb");
        assert!(!lit(30, 40), "nothing near the tail but the shaft");
    }

    /// Found by the `drawing` fuzz target
    /// (`fuzz/regressions/drawing/wide-arrow-head`): the head of an arrow
    /// wider than 0.08 / 3 of the picture height (widths go to 0.05) was
    /// clamped between a floor above its ceiling, which panics, so a
    /// report still with such an arrow took the export down.
    #[test]
    fn a_wide_arrow_has_a_head_too() {
        let (w, h) = (64, 36);
        for width in [0.08 / 3.0, 0.03, MAX_WIDTH] {
            let arrow =
                Shape::new("arrow", "#090909", width, vec![[0.5, 0.0], [0.5, 0.5]]).unwrap();
            let segments = arrow.segments(w as f32 / h as f32);
            assert_eq!(segments.len(), 3, "{width}");
            // The barbs are three line widths long.
            for (tip, end) in &segments[1..] {
                let along = ((end[0] - tip[0]) * w as f32 / h as f32).hypot(end[1] - tip[1]);
                assert!((along - width * 3.0).abs() < 1e-5, "{width}: {along}");
            }
            let mut rgb = vec![0u8; w * h * 3];
            arrow.paint(&mut rgb, w, h);
            assert!(rgb.contains(&9), "{width}");
        }
    }

    proptest! {
        #[test]
        fn points_survive_the_record(points in prop::collection::vec((0f32..=1.0, 0f32..=1.0), 0..50)) {
            let points: Vec<[f32; 2]> = points.into_iter().map(|(x, y)| [x, y]).collect();
            prop_assert_eq!(decode_points(&encode_points(&points)), points);
        }

        #[test]
        fn a_pen_stroke_sent_in_parts_passes_exactly_when_the_whole_stroke_does(
            total in 1usize..2100,
            cuts in prop::collection::vec(1usize..400, 1..12),
        ) {
            let whole_ok = Shape::new("pen", "#ffffff", 0.01, vec![[0.5, 0.5]; total]).is_ok();
            let mut from = 0;
            let mut parts_ok = true;
            for cut in cuts.iter().cycle() {
                if from >= total {
                    break;
                }
                let len = (*cut).min(total - from);
                parts_ok &= StrokePart::new("pen", "#ffffff", 0.01, from, vec![[0.5, 0.5]; len]).is_ok();
                from += len;
            }
            prop_assert_eq!(parts_ok, whole_ok);
        }

        #[test]
        fn painting_never_leaves_the_buffer(
            points in prop::collection::vec((0f32..=1.0, 0f32..=1.0), 1..20),
            width in MIN_WIDTH..=MAX_WIDTH,
            w in 1usize..64,
            h in 1usize..64,
        ) {
            let points = points.into_iter().map(|(x, y)| [x, y]).collect();
            let shape = Shape::new("pen", "#ffffff", width, points).unwrap();
            let mut rgb = vec![0u8; w * h * 3];
            shape.paint(&mut rgb, w, h);
            prop_assert!(rgb.contains(&255), "a stroke always marks a pixel");
        }
    }
}
