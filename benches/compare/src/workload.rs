//! The deterministic workload: contacts as a CRM export would send them (raw JSON for
//! contactdb) and the same contacts pre-normalized (for SQLite and the floors).
//!
//! Contact `i` at generation `g` is a pure function of `(i, g)`: generation 0 is the
//! initial load, generation 1 changes email, name and phone. Keys, emails and phones
//! come from independent bijections of `i`, so they are unique per contact and
//! uncorrelated with each other and with the load order.

use serde_json::{Map, Value as Json};

/// Seed of every permutation and choice; fixed so every run sees the same data.
pub const SEED: u64 = 0x00C0_47AC_7DB0_2026;

/// splitmix64: the generator's state step.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix64(*state)
}

/// splitmix64's finalizer: a bijection on u64.
pub fn mix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic PRNG (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// A balanced Feistel network: a bijection on `0..2^(2*half_bits)`.
fn feistel(x: u64, half_bits: u32, salt: u64) -> u64 {
    let mask = (1u64 << half_bits) - 1;
    let mut l = (x >> half_bits) & mask;
    let mut r = x & mask;
    for round in 0..4u64 {
        let f = mix64(r ^ salt ^ (round << 56)) & mask;
        let nl = r;
        r = l ^ f;
        l = nl;
    }
    (l << half_bits) | r
}

const FIRST: &[&str] = &[
    "Ann", "Bob", "Carla", "David", "Elif", "Frank", "Gizem", "Hakan", "Ines", "John", "Kemal",
    "Laura", "Mehmet", "Nora", "Oguz", "Paula", "Quinn", "Rana", "Selin", "Tom", "Umut", "Vera",
    "Will", "Xenia", "Yusuf", "Zeynep",
];
const LAST: &[&str] = &[
    "Smith", "Yilmaz", "Garcia", "Kaya", "Muller", "Demir", "Rossi", "Sahin", "Brown", "Celik",
    "Martin", "Aydin", "Jones", "Ozturk", "Dubois", "Arslan", "Taylor", "Dogan", "Novak", "Kilic",
    "Wilson", "Aslan", "Silva", "Cetin",
];
const DOMAINS: &[&str] = &[
    "Example.COM",
    "GMail.com",
    "Outlook.Com",
    "YAHOO.com",
    "mail.Example.org",
    "Corp.Example.NET",
];

/// The largest contact index the bijections cover (keys: 2^40, phones: 2^31 per
/// generation).
pub const INDEX_MAX: u64 = 1 << 31;

/// One contact with every value already normalized as contactdb stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Norm {
    pub key: String,
    pub name: String,
    pub surname: String,
    pub email: String,
    pub gsm: String,
    pub status: &'static str,
    pub priority: i64,
    pub birthday: String,
}

/// Everything derived from `(i, g)`, with the raw (export) forms next to the
/// normalized ones.
pub struct Person {
    pub norm: Norm,
    pub raw_email: String,
    pub raw_gsm: String,
    pub raw_status: &'static str,
}

pub fn key_num(i: u64) -> u64 {
    feistel(i, 20, SEED ^ 0x004B_4559)
}

pub fn key_of(i: u64) -> String {
    format!("cust-{:013}", key_num(i))
}

/// Contact `i` at generation `g` (0 = load, 1.. = later updates).
pub fn person(i: u64, g: u64) -> Person {
    let h = mix64(i ^ SEED);
    let hg = mix64(i.wrapping_mul(31).wrapping_add(g) ^ SEED ^ 0x4E41_4D45);
    // The first name changes with every generation.
    let first = FIRST[(((h >> 4) + g) % FIRST.len() as u64) as usize];
    let last = LAST[((h >> 8) % LAST.len() as u64) as usize];
    // Email: a bijection of (i, g) makes it unique; mixed case, lowercased by contactdb.
    let token = mix64((g << 40) ^ i ^ SEED ^ 0x0045_4D41_494C);
    let domain = DOMAINS[((hg >> 16) % DOMAINS.len() as u64) as usize];
    let raw_email = format!("{first}.{last}.{token:016x}@{domain}");
    let email = raw_email.to_lowercase();
    // Phone: 11 digits from a bijection of (g, i) on 0..2^34; written with spaces,
    // dashes, dots or brackets and a +44 or 0044 prefix; contactdb normalizes to E.164.
    let digits = format!("{:011}", feistel((g << 31) | i, 17, SEED ^ 0x0047_534D));
    let (a, b, c) = (&digits[0..3], &digits[3..7], &digits[7..11]);
    let raw_gsm = match hg % 4 {
        0 => format!("+44 {a} {b} {c}"),
        1 => format!("0044 ({a}) {b}-{c}"),
        2 => format!("+44 {a}.{b}.{c}"),
        _ => format!(" +44{a}{b}{c} "),
    };
    let gsm = format!("+44{digits}");
    let (raw_status, status) = match (h >> 20) % 4 {
        0 => ("a", "A"),
        1 => ("A", "A"),
        2 => ("p", "P"),
        _ => ("P", "P"),
    };
    let birthday = format!(
        "{:04}-{:02}-{:02}",
        1950 + (h >> 24) % 56,
        1 + (h >> 32) % 12,
        1 + (h >> 40) % 28
    );
    Person {
        norm: Norm {
            key: key_of(i),
            name: first.to_owned(),
            surname: last.to_owned(),
            email,
            gsm,
            status,
            priority: ((h >> 48) % 10) as i64,
            birthday,
        },
        raw_email,
        raw_gsm,
        raw_status,
    }
}

impl Person {
    /// The record as a CRM export sends it (what contactdb receives).
    pub fn raw_json(&self) -> Json {
        let n = &self.norm;
        let mut m = Map::new();
        m.insert("contact_key".into(), Json::String(n.key.clone()));
        m.insert("name".into(), Json::String(n.name.clone()));
        m.insert("surname".into(), Json::String(n.surname.clone()));
        m.insert("email".into(), Json::String(self.raw_email.clone()));
        m.insert("gsm".into(), Json::String(self.raw_gsm.clone()));
        m.insert("status".into(), Json::String(self.raw_status.to_owned()));
        m.insert("priority".into(), Json::from(n.priority));
        m.insert("birthday".into(), Json::String(n.birthday.clone()));
        Json::Object(m)
    }
}

/// Whether the workload arrives in random key order or sorted by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    Shuffled,
    Sorted,
}

impl Order {
    pub fn name(self) -> &'static str {
        match self {
            Order::Shuffled => "shuffled",
            Order::Sorted => "sorted",
        }
    }
}

/// One record of a phase: contact `i` at generation `g`, and whether it already
/// exists when the phase runs (an update) or not (an insert).
#[derive(Debug, Clone, Copy)]
pub struct Item {
    pub i: u64,
    pub g: u64,
    pub exists: bool,
}

fn arrange(items: &mut [Item], order: Order, salt: u64) {
    match order {
        Order::Shuffled => Rng::new(SEED ^ salt).shuffle(items),
        Order::Sorted => items.sort_by_key(|it| key_num(it.i)),
    }
}

/// The initial load: contacts `0..n`, generation 0.
pub fn load_items(n: u64, order: Order) -> Vec<Item> {
    let mut v: Vec<Item> = (0..n)
        .map(|i| Item {
            i,
            g: 0,
            exists: false,
        })
        .collect();
    arrange(&mut v, order, 0x4C4F_4144);
    v
}

/// The upsert pass over a file holding contacts `0..n`: half of them (chosen at
/// random) with a changed email, name and phone (generation `g`), and `count - count/2`
/// new contacts starting at index `first_new`. `count` defaults to `n`.
pub fn upsert_items(n: u64, count: u64, first_new: u64, g: u64, order: Order) -> Vec<Item> {
    let updates = (count / 2).min(n);
    let mut existing: Vec<u64> = (0..n).collect();
    let mut rng = Rng::new(SEED ^ 0x5550_4441_5445 ^ g ^ (first_new << 8));
    // Partial Fisher-Yates: the first `updates` slots are a uniform random subset.
    for k in 0..updates as usize {
        let j = k + rng.below((existing.len() - k) as u64) as usize;
        existing.swap(k, j);
    }
    existing.truncate(updates as usize);
    let mut v: Vec<Item> = existing
        .into_iter()
        .map(|i| Item { i, g, exists: true })
        .chain((first_new..first_new + (count - updates)).map(|i| Item {
            i,
            g: 0,
            exists: false,
        }))
        .collect();
    arrange(&mut v, order, 0x5550_5345 ^ g ^ first_new);
    v
}

/// Bytes of the records as a JSON array, the way an export would ship them.
pub fn json_bytes(items: &[Item]) -> u64 {
    let mut total = 2u64; // [ ]
    for it in items {
        let v = person(it.i, it.g).raw_json();
        total += serde_json::to_vec(&v).map_or(0, |b| b.len() as u64) + 1;
    }
    total
}
