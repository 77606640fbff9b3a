//! A minimal class-file rewriter: adds private fields to a class and puts a short prologue in
//! front of chosen methods. It is all the agent needs to mark, at construction, the generators
//! whose seed the JDK chose (a field set by the no-argument `Random()` constructor; SHA1PRNG's
//! record of whether `setSeed` came before first use). Anything unexpected makes it give up
//! (return `None`): the class then loads unchanged and those generators count as seeded by the
//! application, i.e. they are kept, never wrongly renewed.

/// One piece of a prologue: a raw byte, or the constant-pool index (u2) of an added field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    B(u8),
    Field(usize),
}

pub struct Prologue<'a> {
    pub name: &'a str,
    pub desc: &'a str,
    pub ops: &'a [Op],
    pub max_stack: u16,
}

pub struct FieldDef<'a> {
    pub name: &'a str,
    pub desc: &'a str,
}

struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Reader<'a> {
    fn u1(&mut self) -> Option<u8> {
        let v = *self.b.get(self.p)?;
        self.p += 1;
        Some(v)
    }
    fn u2(&mut self) -> Option<u16> {
        let s = self.b.get(self.p..self.p + 2)?;
        self.p += 2;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u4(&mut self) -> Option<u32> {
        let s = self.b.get(self.p..self.p + 4)?;
        self.p += 4;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p + n)?;
        self.p += n;
        Some(s)
    }
}

fn put2(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put4(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Adds `fields` to the class and `prologues` to the named methods. Returns `None` when the
/// class is not as expected (a method missing, a stack map it cannot shift).
pub fn patch(class: &[u8], fields: &[FieldDef], prologues: &[Prologue]) -> Option<Vec<u8>> {
    let mut r = Reader { b: class, p: 0 };
    if r.u4()? != 0xCAFE_BABE {
        return None;
    }
    r.u2()?;
    r.u2()?;
    let cp_count = r.u2()?;
    // utf8[i] = the text of constant i when it is a Utf8 constant.
    let mut utf8: Vec<Option<&[u8]>> = vec![None; cp_count as usize];
    let mut i = 1u16;
    while i < cp_count {
        let tag = r.u1()?;
        match tag {
            1 => {
                let n = r.u2()? as usize;
                utf8[i as usize] = Some(r.take(n)?);
            }
            3 | 4 | 9 | 10 | 11 | 12 | 17 | 18 => {
                r.take(4)?;
            }
            5 | 6 => {
                r.take(8)?;
                i += 1;
            }
            7 | 8 | 16 | 19 | 20 => {
                r.take(2)?;
            }
            15 => {
                r.take(3)?;
            }
            _ => return None,
        }
        i += 1;
    }
    let cp_end = r.p;
    let _access = r.u2()?;
    let this_class = r.u2()?;
    let name_of = |idx: u16| utf8.get(idx as usize).copied().flatten();

    // New constants: per field Utf8 name, Utf8 descriptor, NameAndType, Fieldref.
    let mut out = Vec::with_capacity(class.len() + 256);
    out.extend_from_slice(&class[..8]);
    let added = 4 * fields.len() as u16;
    put2(&mut out, cp_count.checked_add(added)?);
    out.extend_from_slice(&class[10..cp_end]);
    let mut fieldref = Vec::new();
    for (n, f) in fields.iter().enumerate() {
        let base = cp_count + 4 * n as u16;
        out.push(1);
        put2(&mut out, f.name.len() as u16);
        out.extend_from_slice(f.name.as_bytes());
        out.push(1);
        put2(&mut out, f.desc.len() as u16);
        out.extend_from_slice(f.desc.as_bytes());
        out.push(12);
        put2(&mut out, base);
        put2(&mut out, base + 1);
        out.push(9);
        put2(&mut out, this_class);
        put2(&mut out, base + 2);
        fieldref.push((base, base + 1, base + 3));
    }
    // access, this, super, interfaces
    let head_start = r.p - 4;
    r.u2()?;
    let n_if = r.u2()? as usize;
    r.take(2 * n_if)?;
    out.extend_from_slice(&class[head_start..r.p]);
    // fields
    let n_fields = r.u2()?;
    let fields_start = r.p;
    for _ in 0..n_fields {
        r.take(6)?;
        skip_attributes(&mut r)?;
    }
    put2(&mut out, n_fields.checked_add(fields.len() as u16)?);
    out.extend_from_slice(&class[fields_start..r.p]);
    for &(name, desc, _) in &fieldref {
        // private transient synthetic
        put2(&mut out, 0x1082);
        put2(&mut out, name);
        put2(&mut out, desc);
        put2(&mut out, 0);
    }
    // methods
    let n_methods = r.u2()?;
    put2(&mut out, n_methods);
    let mut done = vec![false; prologues.len()];
    for _ in 0..n_methods {
        let m_start = r.p;
        r.u2()?;
        let name = name_of(r.u2()?)?;
        let desc = name_of(r.u2()?)?;
        let which = prologues
            .iter()
            .position(|p| p.name.as_bytes() == name && p.desc.as_bytes() == desc);
        let n_attr = r.u2()?;
        out.extend_from_slice(&class[m_start..r.p]);
        for _ in 0..n_attr {
            let a_name = r.u2()?;
            let len = r.u4()? as usize;
            let body = r.take(len)?;
            match which {
                Some(w) if name_of(a_name) == Some(b"Code") => {
                    let p = &prologues[w];
                    let mut code = Vec::new();
                    for op in p.ops {
                        match *op {
                            Op::B(b) => code.push(b),
                            Op::Field(f) => put2(&mut code, fieldref.get(f)?.2),
                        }
                    }
                    // Keep tableswitch/lookupswitch padding right: shift by a multiple of 4.
                    while code.len() % 4 != 0 {
                        code.insert(0, 0x00); // nop
                    }
                    let new_body = shift_code(body, &code, p.max_stack, &name_of)?;
                    put2(&mut out, a_name);
                    put4(&mut out, new_body.len() as u32);
                    out.extend_from_slice(&new_body);
                    done[w] = true;
                }
                _ => {
                    put2(&mut out, a_name);
                    put4(&mut out, len as u32);
                    out.extend_from_slice(body);
                }
            }
        }
    }
    if done.iter().any(|d| !d) {
        return None;
    }
    out.extend_from_slice(&class[r.p..]);
    Some(out)
}

fn skip_attributes(r: &mut Reader) -> Option<()> {
    let n = r.u2()?;
    for _ in 0..n {
        r.u2()?;
        let len = r.u4()? as usize;
        r.take(len)?;
    }
    Some(())
}

/// A Code attribute's body with `pre` in front of the code: offsets in the exception table,
/// the stack map and the line numbers move by `pre.len()`; other debugging tables are dropped.
fn shift_code<'a>(
    body: &[u8],
    pre: &[u8],
    min_stack: u16,
    name_of: &dyn Fn(u16) -> Option<&'a [u8]>,
) -> Option<Vec<u8>> {
    let k = pre.len() as u16;
    let mut r = Reader { b: body, p: 0 };
    let max_stack = r.u2()?;
    let max_locals = r.u2()?;
    let code_len = r.u4()? as usize;
    let code = r.take(code_len)?;
    let mut out = Vec::with_capacity(body.len() + pre.len());
    put2(&mut out, max_stack.max(min_stack));
    put2(&mut out, max_locals);
    put4(&mut out, (code_len + pre.len()) as u32);
    out.extend_from_slice(pre);
    out.extend_from_slice(code);
    let n_exc = r.u2()?;
    put2(&mut out, n_exc);
    for _ in 0..n_exc {
        for _ in 0..3 {
            put2(&mut out, r.u2()?.checked_add(k)?);
        }
        put2(&mut out, r.u2()?);
    }
    let n_attr = r.u2()?;
    let mut attrs = Vec::new();
    let mut kept = 0u16;
    for _ in 0..n_attr {
        let a_name = r.u2()?;
        let len = r.u4()? as usize;
        let a = r.take(len)?;
        let new = match name_of(a_name)? {
            b"StackMapTable" => shift_stack_map(a, k)?,
            b"LineNumberTable" => {
                let mut q = Reader { b: a, p: 0 };
                let n = q.u2()?;
                let mut v = Vec::new();
                put2(&mut v, n);
                for _ in 0..n {
                    put2(&mut v, q.u2()?.checked_add(k)?);
                    put2(&mut v, q.u2()?);
                }
                v
            }
            _ => continue,
        };
        put2(&mut attrs, a_name);
        put4(&mut attrs, new.len() as u32);
        attrs.extend_from_slice(&new);
        kept += 1;
    }
    put2(&mut out, kept);
    out.extend_from_slice(&attrs);
    Some(out)
}

/// The first frame's offset delta grows by `k` (later ones are relative). `Uninitialized(offset)`
/// entries name code offsets too; they do not occur in the methods patched, so give up on them.
fn shift_stack_map(a: &[u8], k: u16) -> Option<Vec<u8>> {
    let mut r = Reader { b: a, p: 0 };
    let n = r.u2()?;
    let mut out = Vec::new();
    put2(&mut out, n);
    for i in 0..n {
        let first = i == 0;
        let add = if first { k } else { 0 };
        let t = r.u1()?;
        match t {
            0..=63 => {
                let d = t as u16 + add;
                if d <= 63 {
                    out.push(d as u8);
                } else {
                    out.push(251);
                    put2(&mut out, d);
                }
            }
            64..=127 => {
                let d = (t - 64) as u16 + add;
                if d <= 63 {
                    out.push(64 + d as u8);
                } else {
                    out.push(247);
                    put2(&mut out, d);
                }
                copy_types(&mut r, &mut out, 1)?;
            }
            247 => {
                out.push(t);
                put2(&mut out, r.u2()?.checked_add(add)?);
                copy_types(&mut r, &mut out, 1)?;
            }
            248..=251 => {
                out.push(t);
                put2(&mut out, r.u2()?.checked_add(add)?);
            }
            252..=254 => {
                out.push(t);
                put2(&mut out, r.u2()?.checked_add(add)?);
                copy_types(&mut r, &mut out, (t - 251) as usize)?;
            }
            255 => {
                out.push(t);
                put2(&mut out, r.u2()?.checked_add(add)?);
                let nl = r.u2()?;
                put2(&mut out, nl);
                copy_types(&mut r, &mut out, nl as usize)?;
                let ns = r.u2()?;
                put2(&mut out, ns);
                copy_types(&mut r, &mut out, ns as usize)?;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn copy_types(r: &mut Reader, out: &mut Vec<u8>, n: usize) -> Option<()> {
    for _ in 0..n {
        let t = r.u1()?;
        out.push(t);
        match t {
            0..=6 => {}
            7 => put2(out, r.u2()?),
            _ => return None, // 8 = Uninitialized(offset)
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made class: `class T { void m() { return; } }` with a Code attribute that has a
    /// stack map frame at offset 0 delta 3 and a line number table.
    fn tiny_class() -> Vec<u8> {
        let mut c = Vec::new();
        put4(&mut c, 0xCAFE_BABE);
        put2(&mut c, 0);
        put2(&mut c, 52);
        let utf = |c: &mut Vec<u8>, s: &str| {
            c.push(1);
            put2(c, s.len() as u16);
            c.extend_from_slice(s.as_bytes());
        };
        put2(&mut c, 9); // constants 1..8
        utf(&mut c, "T"); // 1
        c.push(7);
        put2(&mut c, 1); // 2 Class T
        utf(&mut c, "java/lang/Object"); // 3
        c.push(7);
        put2(&mut c, 3); // 4
        utf(&mut c, "m"); // 5
        utf(&mut c, "()V"); // 6
        utf(&mut c, "Code"); // 7
        utf(&mut c, "StackMapTable"); // 8
        put2(&mut c, 0x20);
        put2(&mut c, 2);
        put2(&mut c, 4);
        put2(&mut c, 0); // interfaces
        put2(&mut c, 0); // fields
        put2(&mut c, 1); // methods
        put2(&mut c, 0);
        put2(&mut c, 5);
        put2(&mut c, 6);
        put2(&mut c, 1);
        put2(&mut c, 7);
        let mut code = Vec::new();
        put2(&mut code, 1);
        put2(&mut code, 1);
        put4(&mut code, 4);
        code.extend_from_slice(&[0x00, 0x00, 0x00, 0xb1]);
        put2(&mut code, 0);
        put2(&mut code, 1);
        put2(&mut code, 8);
        put4(&mut code, 3);
        put2(&mut code, 1);
        code.push(3); // same_frame at offset 3
        put4(&mut c, code.len() as u32);
        c.extend_from_slice(&code);
        put2(&mut c, 0); // class attributes
        c
    }

    #[test]
    fn adds_a_field_and_a_prologue_and_shifts_the_stack_map() {
        let c = tiny_class();
        let ops = [Op::B(0x2a), Op::B(0x04), Op::B(0xb5), Op::Field(0)];
        let out = patch(
            &c,
            &[FieldDef {
                name: "x$d",
                desc: "Z",
            }],
            &[Prologue {
                name: "m",
                desc: "()V",
                ops: &ops,
                max_stack: 2,
            }],
        )
        .unwrap();
        // 4 constants more: the Fieldref is constant 12.
        assert_eq!(u16::from_be_bytes([out[8], out[9]]), 13);
        let hay = out
            .windows(3)
            .position(|w| w == [0x2a, 0x04, 0xb5])
            .unwrap();
        assert_eq!(&out[hay + 3..hay + 5], &[0, 12]);
        // The prologue (5 bytes) is padded to 8: the frame moves from 3 to 11.
        let smt = out.len() - 2 - 1;
        assert_eq!(out[smt], 11);
        // A method that is not there: the class is left alone.
        assert!(patch(
            &c,
            &[],
            &[Prologue {
                name: "n",
                desc: "()V",
                ops: &ops,
                max_stack: 2
            }]
        )
        .is_none());
        assert!(patch(b"not a class", &[], &[]).is_none());
    }

    #[test]
    fn a_large_shift_uses_the_extended_frame() {
        let mut out = Vec::new();
        let mut map = Vec::new();
        put2(&mut map, 2);
        map.push(60);
        map.push(64 + 2);
        map.push(1); // int
        let mut r = Reader { b: &map, p: 0 };
        let _ = &mut r;
        out.extend(shift_stack_map(&map, 8).unwrap());
        assert_eq!(out, vec![0, 2, 251, 0, 68, 66, 1]);
        let uninit = [0, 1, 64, 8, 0, 0];
        assert!(shift_stack_map(&uninit, 4).is_none());
    }
}
