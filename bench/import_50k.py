"""Time the HR import of a realistic 50,000-line file through the real CLI.

Generates a deterministic HR export (French names with accents, particles and
apostrophes, many namesakes, about 200 schools, disciplines, services and roles,
a handful of bad lines as real exports have), creates a data folder with
``groupware init`` in a temporary folder, then times

(a) the first ``groupware --data DIR users import FILE`` (everyone created), and
(b) the second run of the same file (idempotent: nothing created or updated),

each as a subprocess, so the figures include interpreter start-up and the report.

Usage: ``python bench/import_50k.py [--lines 50000] [--seed 2024] [--keep]``
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _words(text: str) -> list[str]:
    """Names separated by blanks; ``_`` stands for a blank inside a name."""
    return [word.replace("_", " ") for word in text.split()]


FIRST_NAMES = _words(
    "Marie Jean Pierre Michel Philippe Nathalie Isabelle Sylvie Catherine Françoise Anne "
    "Christine Sandrine Véronique Valérie Stéphanie Céline Hélène Sophie Émilie Aurélie "
    "Julie Camille Léa Chloé Manon Inès Zoé Noémie Maëlle Anaïs Océane Clémence Agnès "
    "Frédéric Stéphane Sébastien Jérôme François Benoît Hervé Thierry Nicolas Julien "
    "Thomas Mathieu Guillaume Grégoire Rémi Noé Maël Loïc Gaël Yannick Éric Cédric "
    "Jean-Pierre Jean-Marc Jean-Luc Marie-Claire Marie-Thérèse Anne-Sophie Marie-Hélène "
    "Pierre-Yves Jean-François Aïssatou Mamadou Fatoumata Moussa Karim Samira Yasmina "
    "Mohamed Fatima Leïla Nadia Rachid João Inês Conceição Björn Zoë Thi-Minh Lætitia "
    "Bénédicte Geneviève Joël Gaëlle Ségolène Cécile Éloïse Héloïse Jérémie Timothée"
)
# Weighted towards the common ones, so that namesakes are frequent.
LAST_NAMES = _words(
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefèvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André "
    "Lefebvre Mercier Dupont Lambert Bonnet François Martinez Legrand Garnier Faure "
    "Rousseau Blanc Guérin Muller Henry Roussel Nicolas Perrin Morin Mathieu Clément "
    "Gauthier Dumont Lopez Fontaine Chevalier Robin Masson Sanchez Gérard Nguyen Boyer "
    "Denis Lemaire Duval Joly Gautier Roger Roche Roy Noël Meyer Lucas Meunier Jean "
    "Pérez Marchand Dufour Blanchard Marie Barbier Brun Dumas Brunet Schmitt Leroux "
    "Colin Fernandez Pierre Renard Arnaud Rolland Caron Aubert Giraud Leclerc Vidal "
    "Bourgeois Renaud Lemoine Picard Gaillard Philippe Leclercq Lacroix Fabre Dupuis "
    "Olivier Rodriguez Da_Silva Hubert Louis Charles Guillot Rivière Le_Gall Le_Goff "
    "Cœur Œuvray N'Diaye N’Diaye O'Connor D'Almeida L'Hôte D’Artagnan De_La_Fontaine "
    "de_La_Tour du_Pont de_Sousa Le_Pen Ben_Ali Saint-Martin Lévêque Bézier Ménard "
    "Séguin Thébault Hénaff Kervella Quéré Prigent Gourvès Étienne Besançon Forêt "
    "Baron Bertin Carré Charpentier Collet Cordier Cousin Daniel Delmas Deschamps "
    "Fleury Germain Gilbert Gillet Guichard Hamon Humbert Jacob Julien Klein Lebon "
    "Labbé Langlois Laporte Laroche Launay Leblanc Lebrun Leduc Legros Lejeune Lemaître "
    "Lesage Maillard Marty Millet Monnier Navarro Pasquier Poirier Poulain Rey "
    "Riviere Royer Tessier Vasseur Weber Bouvier Brunel Camus Chauvin Chevallier "
    "Delattre Devaux Ferrand Gaillot Grondin Hoarau Payet Técher Fontanel Sabatier "
    "Puig Pujol Vilà Ferrer Sala Bosch Roig Serra Pagès Casals Miquel Bonet Font "
    "Esteve Cazals Bousquet Fabregat Carrère Castex Dauphin Espinasse Vigouroux "
    "Ahmed Benali Bensaïd Boukhris Chérif Haddad Mansouri Mebarki Saïdi Ziani "
    "Diallo Traoré Coulibaly Konaté Camara Sow Ba Kouassi Mendy Ndiaye "
    "Pereira Ferreira Oliveira Santos Gonçalves Rodrigues Carvalho Lopes Sousa Costa "
    "Müller Schneider Wagner Zimmermann Hoffmann Kœnig Bœuf Çelik Yılmaz"
)
SCHOOL_KINDS = (
    ("École élémentaire", 6),
    ("École maternelle", 3),
    ("Collège", 5),
    ("Lycée", 3),
    ("Lycée professionnel", 2),
)
SCHOOL_PATRONS = (
    "Jean Moulin",
    "Victor Hugo",
    "Jules Ferry",
    "Marie Curie",
    "Louis Pasteur",
    "Jean Jaurès",
    "Paul Éluard",
    "Albert Camus",
    "Simone Veil",
    "Jacques Prévert",
    "Émile Zola",
    "Joliot-Curie",
    "Jean de La Fontaine",
    "Antoine de Saint-Exupéry",
    "Françoise Dolto",
    "Olympe de Gouges",
    "Aristide Maillol",
    "François Arago",
    "Pablo Picasso",
    "Charles de Gaulle",
    "Joffre",
    "Les Garrigues",
    "Le Ribéral",
    "La Côte Radieuse",
    "Les Oliviers",
)
TOWNS = (
    "Perpignan",
    "Narbonne",
    "Carcassonne",
    "Béziers",
    "Montpellier",
    "Nîmes",
    "Sète",
    "Céret",
    "Prades",
    "Limoux",
    "Lézignan",
    "Agde",
)
DISCIPLINES = (
    "Lettres modernes",
    "Lettres classiques",
    "Mathématiques",
    "Histoire-Géographie",
    "Anglais",
    "Espagnol",
    "Allemand",
    "Catalan",
    "Physique-Chimie",
    "SVT",
    "Technologie",
    "EPS",
    "Arts plastiques",
    "Éducation musicale",
    "Philosophie",
    "SES",
    "Documentation",
    "Génie électrique",
)
ROLES = (
    ("Enseignant", 60),
    ("Professeur des écoles", 20),
    ("AESH", 6),
    ("Agent d'entretien", 3),
    ("Secrétaire", 2),
    ("CPE", 2),
    ("Assistant d'éducation", 3),
    ("Infirmier", 1),
    ("Adjoint gestionnaire", 1),
    ("Chef d'établissement", 1),
    ("Directeur d'école", 1),
)
SERVICES = {
    "AESH": "Inclusion",
    "Agent d'entretien": "Intendance",
    "Secrétaire": "Secrétariat",
    "CPE": "Vie scolaire",
    "Assistant d'éducation": "Vie scolaire",
    "Infirmier": "Santé",
    "Adjoint gestionnaire": "Intendance",
    "Chef d'établissement": "Direction",
    "Directeur d'école": "Direction",
}
HEADER = "numen;nom;prenom;date_naissance;fonction;etablissement;discipline;service"


def schools(rng: random.Random, count: int) -> list[str]:
    """About ``count`` distinct school names."""
    names: set[str] = set()
    kinds = [kind for kind, weight in SCHOOL_KINDS for _ in range(weight)]
    while len(names) < count:
        names.add(f"{rng.choice(kinds)} {rng.choice(SCHOOL_PATRONS)} {rng.choice(TOWNS)}")
    return sorted(names)


def numen(rng: random.Random, seen: set[str]) -> str:
    """A fresh NUMEN in the usual shape: year, E, seven digits, three letters."""
    while True:
        value = f"{rng.randint(5, 24):02d}E{rng.randint(0, 9_999_999):07d}" + "".join(
            rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(3)
        )
        if value not in seen:
            seen.add(value)
            return value


def birth_date(rng: random.Random) -> str:
    """Mostly DD/MM/YYYY, some ISO dates, as merged exports have."""
    year, month, day = rng.randint(1958, 2001), rng.randint(1, 12), rng.randint(1, 28)
    if rng.random() < 0.1:
        return f"{year}-{month:02d}-{day:02d}"
    return f"{day:02d}/{month:02d}/{year}"


def last_name(rng: random.Random, weights: list[float]) -> str:
    """A surname; some are double-barrelled, as after a marriage."""
    name = rng.choices(LAST_NAMES, weights)[0]
    if rng.random() < 0.08:
        name += "-" + rng.choices(LAST_NAMES, weights)[0]
    return name


def first_name(rng: random.Random, weights: list[float]) -> str:
    """A first name; some are compound or have a second given name."""
    name = rng.choices(FIRST_NAMES, weights)[0]
    roll = rng.random()
    if roll < 0.05:
        name = f"{rng.choice(('Jean', 'Marie', 'Anne'))}-{name}"
    elif roll < 0.08:
        name = f"{name} {rng.choices(FIRST_NAMES, weights)[0]}"
    return name


def generate(lines: int, seed: int) -> str:
    """The whole file as text (header included), ``lines`` data lines."""
    rng = random.Random(seed)
    school_names = schools(rng, 200)
    roles = [role for role, weight in ROLES for _ in range(weight)]
    last_weights = [1.0 / (rank + 1) ** 0.6 for rank in range(len(LAST_NAMES))]
    first_weights = [1.0 / (rank + 1) ** 0.5 for rank in range(len(FIRST_NAMES))]
    seen: set[str] = set()
    out = [HEADER]
    for number in range(lines):
        role = rng.choice(roles)
        school = rng.choice(school_names)
        if role == "Enseignant":
            discipline, service = rng.choice(DISCIPLINES), ""
        elif role == "Professeur des écoles":
            discipline, service = "", ""
        else:
            discipline, service = "", SERVICES[role]
        fields = [
            numen(rng, seen),
            last_name(rng, last_weights),
            first_name(rng, first_weights),
            birth_date(rng),
            role,
            school,
            discipline,
            service,
        ]
        if number % 2500 == 1234:  # a few mistakes, as in every real export
            fields[0] = fields[0].lower()
        elif number % 2500 == 2345:
            fields[3] = "31/02/1980"
        out.append(";".join(fields))
    return "\n".join(out) + "\n"


def run_import(data_dir: Path, csv_file: Path) -> tuple[float, dict[str, int]]:
    """Run the CLI import once; return its wall time and the report's numbers."""
    command = [sys.executable, "-m", "groupware", "--data", str(data_dir), "users", "import"]
    started = time.perf_counter()
    result = subprocess.run([*command, str(csv_file)], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"import failed ({result.returncode}):\n{result.stderr}")
    counts = {
        key: int(value)
        for key, value in re.findall(
            r"(lines read|created|updated|unchanged|disabled|rejected)\s*\W\s*(\d+)",
            result.stdout,
        )
    }
    return elapsed, counts


def main() -> None:
    """Generate, init, import twice, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="groupware-bench-"))
    csv_file = work / "staff.csv"
    csv_file.write_bytes(b"\xef\xbb\xbf" + generate(args.lines, args.seed).encode())
    data_dir = work / "data"
    subprocess.run(
        [sys.executable, "-m", "groupware", "init", str(data_dir), "--domain", "ac-bench.fr"],
        check=True,
        capture_output=True,
    )
    print(f"file: {csv_file} ({args.lines} lines, {csv_file.stat().st_size / 1e6:.1f} MB)")
    for label in ("first import", "second import (idempotent)"):
        seconds, counts = run_import(data_dir, csv_file)
        numbers = " ".join(f"{key.replace(' ', '_')}={value}" for key, value in counts.items())
        print(f"{label}: {seconds:.1f} s, {args.lines / seconds:,.0f} lines/s; {numbers}")
    with sqlite3.connect(data_dir / "groupware.db") as db:
        tables = ("persons", "addresses", "groups", "group_members")
        totals = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        namesakes = db.execute("SELECT count(*) FROM persons WHERE login GLOB '*[0-9]'").fetchone()[
            0
        ]
    print("database: " + " ".join(f"{t}={n}" for t, n in totals.items()))
    print(f"addresses with a collision number: {namesakes}")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
