//! A small writer of text-only PDF documents (packing manifests now, statements later): A4
//! pages of left-aligned lines in Helvetica and Helvetica-Bold (PDF's standard fonts, so
//! nothing is embedded), flowing onto new pages, with a header and a page footer on each.
//! Text is encoded as WinAnsi (Latin-1 plus the usual typographic marks); other characters
//! print as `?`.

use std::fmt::Write as _;

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 42.0;
/// Helvetica's average advance is about half its size: enough to wrap lines sensibly.
const AVERAGE_ADVANCE: f32 = 0.5;
const LEADING: f32 = 1.3;

pub struct TextPdf {
    header: String,
    pages: Vec<String>,
    current: String,
    y: f32,
}

impl TextPdf {
    /// A document whose every page starts with `header` in bold.
    pub fn new(header: &str) -> Self {
        let mut pdf = Self { header: header.to_owned(), pages: Vec::new(), current: String::new(), y: 0.0 };
        pdf.start_page();
        pdf
    }

    fn start_page(&mut self) {
        if !self.current.is_empty() {
            self.pages.push(std::mem::take(&mut self.current));
        }
        self.y = PAGE_HEIGHT - MARGIN;
        let header = self.header.clone();
        self.put_line(0.0, 12.0, true, &header);
        self.rule();
        self.gap(6.0);
    }

    /// Starts a new page unless `height` points fit on this one (keeps a block together).
    pub fn keep_together(&mut self, height: f32) {
        if self.y - height < MARGIN + 20.0 {
            self.start_page();
        }
    }

    /// The height `lines` lines of `size` take.
    pub fn height_of(lines: usize, size: f32) -> f32 {
        lines as f32 * size * LEADING
    }

    /// Writes `text`, wrapped at the right margin, starting `indent` points in.
    pub fn text(&mut self, indent: f32, size: f32, bold: bool, text: &str) {
        let width = PAGE_WIDTH - 2.0 * MARGIN - indent;
        let max_chars = ((width / (size * AVERAGE_ADVANCE)) as usize).max(10);
        for line in wrap(text, max_chars) {
            self.keep_together(size * LEADING);
            self.put_line(indent, size, bold, &line);
        }
    }

    fn put_line(&mut self, indent: f32, size: f32, bold: bool, text: &str) {
        self.y -= size * LEADING;
        let font = if bold { "F2" } else { "F1" };
        let _ = writeln!(
            self.current,
            "BT /{font} {size} Tf {:.1} {:.1} Td ({}) Tj ET",
            MARGIN + indent,
            self.y,
            escape(text)
        );
    }

    pub fn gap(&mut self, height: f32) {
        self.y -= height;
    }

    /// A thin horizontal line across the page.
    pub fn rule(&mut self) {
        self.y -= 4.0;
        let _ =
            writeln!(self.current, "0.5 w {MARGIN:.1} {:.1} m {:.1} {:.1} l S", self.y, PAGE_WIDTH - MARGIN, self.y);
    }

    pub fn page_count(&self) -> usize {
        self.pages.len() + usize::from(!self.current.is_empty())
    }

    /// The document's bytes, with "page n of m" at the foot of every page.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.current.is_empty() {
            self.pages.push(std::mem::take(&mut self.current));
        }
        let total = self.pages.len();
        let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::new();
        let mut object = |out: &mut Vec<u8>, body: &[u8]| {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", offsets.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        };
        // Objects 1–4: catalog, page tree, the two fonts; then a page and its content each.
        let kids: Vec<String> = (0..total).map(|i| format!("{} 0 R", 5 + 2 * i)).collect();
        object(&mut out, b"<< /Type /Catalog /Pages 2 0 R >>");
        object(&mut out, format!("<< /Type /Pages /Kids [{}] /Count {total} >>", kids.join(" ")).as_bytes());
        for base in ["Helvetica", "Helvetica-Bold"] {
            let font = format!("<< /Type /Font /Subtype /Type1 /BaseFont /{base} /Encoding /WinAnsiEncoding >>");
            object(&mut out, font.as_bytes());
        }
        for (i, content) in self.pages.iter().enumerate() {
            let footer = format!("page {} of {total}", i + 1);
            let mut stream = content.clone();
            let _ = writeln!(stream, "BT /F1 8 Tf {MARGIN:.1} {:.1} Td ({}) Tj ET", MARGIN - 16.0, escape(&footer));
            let page = format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
                 /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                6 + 2 * i
            );
            object(&mut out, page.as_bytes());
            let mut body = format!("<< /Length {} >>\nstream\n", stream.len()).into_bytes();
            body.extend_from_slice(stream.as_bytes());
            body.extend_from_slice(b"endstream");
            object(&mut out, &body);
        }
        let xref_at = out.len();
        let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1);
        for offset in &offsets {
            let _ = writeln!(xref, "{offset:010} 00000 n ");
        }
        let _ = write!(xref, "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n", offsets.len() + 1);
        out.extend_from_slice(xref.as_bytes());
        out
    }
}

/// Greedy word wrap at `max` characters (a word longer than a line is cut).
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let mut word = word.to_owned();
            while word.chars().count() > max {
                let head: String = word.chars().take(max).collect();
                word = word.chars().skip(max).collect();
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                lines.push(head);
            }
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

/// A PDF literal string's content: WinAnsi bytes (as Latin-1 chars, which `finish` writes as
/// their UTF-8 form — so it maps them back), with `(`, `)` and `\` escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            other => {
                // Octal escapes keep the stream ASCII: the byte is the WinAnsi code.
                let _ = write!(out, "\\{:03o}", win_ansi(other));
            }
        }
    }
    out
}

fn win_ansi(c: char) -> u8 {
    match c {
        '\u{A0}'..='\u{FF}' => c as u32 as u8,
        '€' => 0x80,
        '‚' => 0x82,
        '„' => 0x84,
        '…' => 0x85,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '™' => 0x99,
        _ => b'?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cross_reference_table_points_at_every_object_and_text_is_escaped() {
        let mut pdf = TextPdf::new("Packing manifest (test)");
        for i in 0..120 {
            pdf.keep_together(TextPdf::height_of(2, 10.0));
            pdf.text(0.0, 10.0, true, &format!("#{i:05} Jürgen (Müller) \\ 50 € — “gift”"));
            pdf.text(12.0, 10.0, false, &"long words wrap at the margin ".repeat(8));
        }
        let pages = pdf.page_count();
        assert!(pages > 2, "{pages}");
        let bytes = pdf.finish();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("%PDF-1.4") && text.ends_with("%%EOF\n"));
        assert!(text.contains(&format!("/Count {pages}")));
        assert!(text.contains("(#00007 J\\374rgen \\(M\\374ller\\) \\\\ 50 \\200 \\227 \\223gift\\224) Tj"), "escaped");
        assert!(text.contains(&format!("(page {pages} of {pages}) Tj")));
        let startxref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        // Offsets count bytes (the binary marker line is not UTF-8): read the table from the bytes.
        let table = std::str::from_utf8(&bytes[startxref..]).unwrap();
        assert!(table.starts_with("xref\n"));
        let offsets: Vec<usize> =
            table.lines().filter(|l| l.ends_with(" n ")).map(|l| l[..10].parse().unwrap()).collect();
        assert_eq!(offsets.len(), 4 + 2 * pages);
        for (i, offset) in offsets.iter().enumerate() {
            assert!(bytes[*offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()), "object {}", i + 1);
        }
        // Stream lengths are exact.
        for part in text.split("<< /Length ").skip(1) {
            let length: usize = part.split(' ').next().unwrap().parse().unwrap();
            let stream = part.split_once(">>\nstream\n").unwrap().1;
            assert_eq!(&stream[length..length + 9], "endstream");
        }
    }

    #[test]
    fn wrapping_keeps_words_and_cuts_only_giants() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one\ntwo", 10), ["one", "two"]);
    }
}
