//! The same sources.yml and pipelines run unchanged on the real published files in
//! ../shared/data (`noc/`, `tbs/`, `caf/`; CI has them; set JOBFORGE_REAL_DATA_REQUIRED=1 to fail
//! when absent).

use crate::common::*;

fn real_dir() -> Option<std::path::PathBuf> {
    let dir = repo().join("../shared/data");
    if dir.join("noc/noc_structure_en.csv").exists() {
        return Some(dir.canonicalize().unwrap());
    }
    assert!(std::env::var("JOBFORGE_REAL_DATA_REQUIRED").is_err(), "the real files are not at {}", dir.display());
    eprintln!("SKIPPED: the real files are not at {}", dir.display());
    None
}

/// Every gold table of the WiQ product and its row count on the published files.
const GOLD_ROWS: [(&str, usize); 59] = [
    // TBS occupational groups: 31 groups, 111 subgroup codes (130 group-subgroup pairs: the
    // SR-* codes sit under SRE and SRW), 3,520 pay rows of which 473 repeat another exactly.
    ("dim_og", 31),
    ("dim_og_subgroup", 130),
    ("og_classifications", 31 + 111),
    ("og_classifications_fr", 31 + 111),
    ("og_definitions", 213),
    ("og_qualification_standards", 75),
    ("og_evaluation_standards", 145),
    ("og_pay_rates", 3520 - 473),
    ("og_allowances", 14),
    ("og_collective_agreements", 28),
    ("og_agreement_subgroups", 81),
    // CAF: 88 occupations, 11 families; list items as published (five related-civilian items
    // say `No directly related civilian jobs` and are not occupations).
    ("dim_caf_occupation", 88),
    ("dim_caf_job_family", 11),
    ("caf_occupation_environments", 217),
    ("caf_occupation_employment_types", 136),
    ("caf_related_civilian_occupations", 276 - 5),
    ("caf_related_careers", 217),
    // The bridges' sizes depend on the scores; checked by their matches below.
    ("noc_og_concordance", 0),
    ("caf_noc_bridge", 0),
    ("caf_job_architecture_bridge", 0),
    ("dim_noc", 516),
    ("noc_hierarchy", 822),
    ("noc_onet_crosswalk", 1467),
    ("job_architecture", 1987),
    ("dim_occupations", 209),
    ("cops_summary", 516),
    ("cops_future_labour_market", 516),
    ("cops_recent_labour_market", 516),
    ("cops_employment", 516 * 11),
    ("cops_employment_growth", 516 * 11),
    ("cops_immigration", 516 * 11),
    ("cops_job_openings", 516 * 11),
    ("cops_job_seekers", 516 * 11),
    ("cops_other_replacement", 516 * 11),
    ("cops_other_seekers", 516 * 11),
    ("cops_retirement_rates", 516 * 11),
    ("cops_retirements", 516 * 11),
    ("cops_school_leavers", 516 * 11),
    ("oasis_skills", 900),
    ("oasis_abilities", 900),
    ("oasis_knowledges", 900),
    ("oasis_personal_attributes", 900),
    ("oasis_work_activities", 900),
    ("oasis_work_context", 900),
    ("oasis_interests", 900),
    ("oasis_skills_long", 900 * 33),
    ("oasis_abilities_long", 900 * 49),
    ("oasis_knowledges_long", 900 * 44),
    ("oasis_personal_attributes_long", 900 * 13),
    ("oasis_work_activities_long", 900 * 40),
    ("oasis_work_context_long", 900 * 66),
    ("oasis_labels", 900),
    ("oasis_lead_statements", 900),
    ("oasis_main_duties", 4991),
    ("oasis_example_titles", 18666),
    ("oasis_exclusions", 3074),
    ("oasis_employment_requirements", 2851),
    ("oasis_additional_information", 1158),
    ("oasis_workplaces_employers", 3418),
];

fn query(p: &Project, sql: &str) -> Vec<serde_json::Value> {
    let out = p.jobforge(&["query", sql, "--format", "json"]);
    ok(&out);
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap().as_array().unwrap().clone()
}

#[test]
fn the_real_files_build_the_whole_wiq_product() {
    let Some(dir) = real_dir() else { return };
    let p = Project::sample();
    let out = p.jobforge_env(&["run", "pipelines"], &[("JOBFORGE_SOURCE_DIR", dir.to_str().unwrap())]);
    ok(&out);
    assert!(stdout(&out).contains(&format!("{} succeeded, 0 failed, 0 skipped", GOLD_ROWS.len())), "{}", stdout(&out));
    let gold: Vec<String> = std::fs::read_dir(p.file("data/gold"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    assert_eq!(gold.len(), GOLD_ROWS.len(), "{gold:?}");
    for (table, rows) in GOLD_ROWS {
        let df = p.read(&format!("data/gold/{table}.parquet"));
        if rows > 0 {
            assert_eq!(df.height(), rows, "{table}");
        }
        for name in df.get_column_names() {
            assert!(!name.contains(' ') && !name.contains('\u{feff}') && !name.contains('\u{a0}'), "{table}.{name}");
        }
        if let Ok(ids) = df.column("unit_group_id") {
            let ids = ids.str().unwrap();
            assert!(
                ids.iter().flatten().all(|s| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit())),
                "{table}: unit_group_id"
            );
        }
    }
    // No row of any table was quarantined: every fact's unit group is in dim_noc.
    let q = query(&p, "select count(*) as n from _transitions where rows_quarantined > 0");
    assert_eq!(q[0]["n"], "0");
    let dim = p.read("data/gold/dim_noc.parquet");
    let ids = strings(&dim, "unit_group_id");
    assert_eq!(ids.iter().collect::<std::collections::BTreeSet<_>>().len(), 516);
    assert_eq!(ids[0].as_deref(), Some("00010"));
    assert_eq!(strings(&dim, "class_title")[0].as_deref(), Some("Legislators"));
    assert!(strings(&dim, "minor_group_title").iter().all(Option::is_some), "every unit group has a minor group");
    let orphans = query(&p, "select count(*) as n from oasis_skills_long s left join dim_noc d using (unit_group_id) where d.unit_group_id is null");
    assert_eq!(orphans[0]["n"], "0");
    // Codes stay text with leading zeros; broken OaSIS codes are restored.
    let skills = p.read("data/gold/oasis_skills.parquet");
    assert_eq!(strings(&skills, "oasis_code")[0].as_deref(), Some("00010.00"));
    let duties = query(&p, "select count(distinct oasis_code) as n, min(oasis_code) as first, count(*) filter (where oasis_code = '31100.10') as fixed from oasis_main_duties");
    assert_eq!(duties[0]["n"], "900");
    assert_eq!(duties[0]["first"], "00010.00");
    assert_ne!(duties[0]["fixed"], "0", "31100.1 is restored to 31100.10");
    let crosswalk =
        query(&p, "select count(distinct unit_group_id) as n, min(unit_group_id) as first from noc_onet_crosswalk");
    assert_eq!(crosswalk[0]["n"], "515");
    assert_eq!(crosswalk[0]["first"], "00010");
    // Long-form projections: year is an integer, values numbers, N/A a null.
    let cops = query(&p, "select any_value(typeof(year)) as t, min(year) as lo, max(year) as hi, count(*) filter (where employment is null) as na from cops_employment");
    assert_eq!(
        (cops[0]["t"].as_str(), cops[0]["lo"].as_str(), cops[0]["hi"].as_str()),
        (Some("INTEGER"), Some("2023"), Some("2033"))
    );
    assert_eq!(cops[0]["na"], "341", "31 unit groups are N/A in every year");
    let summary = query(&p, "select count(*) as n from cops_summary where job_seekers is not null");
    assert_eq!(summary[0]["n"], "485");
    // French accents intact; job titles without a 2021 NOC are kept and visible.
    let fr =
        query(&p, "select count(*) as n from job_architecture where famille_d_emplois = 'Administration générale'");
    assert_ne!(fr[0]["n"], "0");
    let unmapped = query(&p, "select count(*) as n from job_architecture where not has_noc_2021");
    assert_eq!(unmapped[0]["n"], "68");
    // The real gold keeps the WiQ model; the one published quirk it meets is a warning.
    let out = p.jobforge_env(&["validate"], &[("JOBFORGE_SOURCE_DIR", dir.to_str().unwrap())]);
    ok(&out);
    assert!(
        stdout(&out).contains(&format!(
            "model WiQ with {} table(s) and {} relationship(s), no errors, 1 warning(s)",
            GOLD_ROWS.len(),
            yaml_len("wiq_schema.yml", "relationships")
        )),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("1 orphan row(s) in `oasis_interests` whose value is not in `oasis_labels.oasis_code`, e.g. 14404.01 [orphans]"), "{}", stderr(&out));
    // Lineage answers on the real project cite the published file and all four layers.
    let out = p
        .jobforge_env(&["lineage", "Where does DIM NOC come from?"], &[("JOBFORGE_SOURCE_DIR", dir.to_str().unwrap())]);
    ok(&out);
    let answer = stdout(&out);
    assert!(
        answer.starts_with("dim_noc comes from source `noc_structure` (")
            && answer.contains("noc_structure_en.csv; publisher Statistics Canada"),
        "{answer}"
    );
    for layer in ["staged  ", "bronze  ", "silver  ", "gold    "] {
        assert!(answer.contains(&format!("\n  {layer}")), "{layer} missing: {answer}");
    }
    assert!(answer.contains("822 -> 516 rows"), "{answer}");
    // The real gold generates a Power BI project that reads back equal to the model.
    let out = p.jobforge(&["powerbi", "--out", "pbi"]);
    ok(&out);
    assert!(stdout(&out).contains(&format!("wrote {} table(s)", GOLD_ROWS.len())), "{}", stdout(&out));
    ok(&p.jobforge(&["powerbi", "--check", "pbi"]));
    let tabs = query(
        &p,
        "select count(*) as n from job_architecture where titre_de_poste like '%\t%' or job_title <> trim(job_title)",
    );
    assert_eq!(tabs[0]["n"], "0");
    // TBS and CAF: as published, bilingual.
    let groups =
        query(&p, "select count(*) as n, count(group_name_fr) as fr, count(distinct og_code) as codes from dim_og");
    assert_eq!((groups[0]["n"].as_str(), groups[0]["fr"].as_str()), (Some("31"), Some("31")), "{groups:?}");
    let ai = query(&p, "select group_name_en, group_name_fr from dim_og where og_code = 'AI'");
    assert_eq!(ai[0]["group_name_en"], "Air Traffic Control");
    assert_eq!(ai[0]["group_name_fr"], "Contrôle de la circulation aérienne");
    let ro = query(&p, "select group_name_en from dim_og where og_code = 'RO'");
    assert_eq!(ro[0]["group_name_en"], "Radio Operations", "not the RCMP row listed under RO");
    let subgroups = query(&p, "select count(distinct subgroup_code) as n, count(*) filter (where subgroup_name_fr is null) as no_fr from dim_og_subgroup");
    assert_eq!(subgroups[0]["n"], "111");
    assert_eq!(subgroups[0]["no_fr"], "0");
    let caf = query(&p, "select count(*) as n, count(title_fr) as fr, count(*) filter (where title_fr like '%·%') as inclusive, count(*) filter (where not has_french_page) as failed from dim_caf_occupation");
    assert_eq!(
        (caf[0]["n"].as_str(), caf[0]["fr"].as_str(), caf[0]["failed"].as_str()),
        (Some("88"), Some("76"), Some("12")),
        "{caf:?}"
    );
    assert_ne!(caf[0]["inclusive"], "0");
    let families = query(&p, "select count(*) as n, sum(career_count) as careers from dim_caf_job_family");
    assert_eq!((families[0]["n"].as_str(), families[0]["careers"].as_str()), (Some("11"), Some("88")));
    let pay = query(&p, "select min(effective_date) as first, count(*) filter (where annual_rate is null and hourly_rate is null) as no_rate from og_pay_rates");
    assert_eq!((pay[0]["first"].as_str(), pay[0]["no_rate"].as_str()), (Some("2010-06-01"), Some("0")));
    // Obvious matches rank first.
    for (career, civilian, unit_group) in [
        ("financial-services-administrator", "Financial Manager", "10010"),
        ("social-work-officer", "Social Worker", "41300"),
        ("logistics-officer", "Purchasing Manager", "10012"),
        ("cook", "Baker", "63202"),
    ] {
        let best = query(&p, &format!("select unit_group_id, confidence from caf_noc_bridge where career_id = '{career}' and civilian_title = '{civilian}' and match_rank = 1"));
        assert_eq!(best[0]["unit_group_id"], unit_group, "{career}: {civilian}: {best:?}");
    }
    for (unit_group, class) in [("10011", "HM"), ("10010", "CT-FIN"), ("43201", "CX"), ("51114", "TR"), ("43203", "FB")]
    {
        let best = query(
            &p,
            &format!(
                "select class_code from noc_og_concordance where unit_group_id = '{unit_group}' and match_rank = 1"
            ),
        );
        assert_eq!(best[0]["class_code"], class, "{unit_group}: {best:?}");
    }
    let cook = query(&p, "select j.job_title from caf_job_architecture_bridge b join job_architecture j using (job_title_id) where career_id = 'cook' and match_rank = 1");
    assert_eq!(cook[0]["job_title"], "Cook", "{cook:?}");
    let bounds = query(&p, "select count(*) filter (where confidence < 0.4 or confidence > 1) as outside, max(match_rank) as k from noc_og_concordance");
    assert_eq!((bounds[0]["outside"].as_str(), bounds[0]["k"].as_str()), (Some("0"), Some("3")), "{bounds:?}");
    let orphans = query(&p, "select count(*) as n from caf_noc_bridge b left join dim_noc d using (unit_group_id) where d.unit_group_id is null");
    assert_eq!(orphans[0]["n"], "0");
    let out = p.jobforge_env(
        &["lineage", "Where does column caf_noc_bridge.unit_group_id come from?"],
        &[("JOBFORGE_SOURCE_DIR", dir.to_str().unwrap())],
    );
    ok(&out);
    assert!(
        stdout(&out).contains("match key from `silver.dim_noc`") && stdout(&out).contains("noc_structure_en.csv"),
        "{}",
        stdout(&out)
    );
}
