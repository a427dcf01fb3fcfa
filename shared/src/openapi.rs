pub fn document() {}
