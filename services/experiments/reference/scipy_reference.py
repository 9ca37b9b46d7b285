"""Reference values for the statistics tests in src/stats/tests.rs.

Run with `python3 scipy_reference.py` (SciPy >= 1.11 for
`TtestResult.confidence_interval`). Every value the Rust tests compare
against is printed here with the call that produced it.
"""

import numpy as np
import scipy
from scipy import stats

CONTROL = [3.1, 2.4, 5.6, 4.4, 3.3, 2.9, 4.8, 3.7, 5.1, 2.2]
TREATMENT = [4.2, 5.3, 3.9, 6.1, 4.8, 5.5, 4.4, 6.3]

TIED_CONTROL = [1, 2, 2, 3, 3, 3, 0, 1]
TIED_TREATMENT = [2, 3, 3, 4, 4, 1, 2, 5, 5]

CONSTANT = [2.0, 2.0, 2.0, 2.0]
VARYING = [1.0, 3.0, 2.0, 4.0, 3.0]

# (likes, views) per user.
RATIO_CONTROL = [(1, 10), (0, 3), (2, 8), (5, 20), (0, 0), (3, 12), (1, 7), (2, 9)]
RATIO_TREATMENT = [(2, 10), (1, 4), (3, 9), (6, 18), (1, 5), (4, 11), (0, 2), (3, 10)]
BUCKETS_CONTROL = [0, 1, 2, 0, 1, 2, 0, 1]
BUCKETS_TREATMENT = [2, 1, 0, 2, 1, 0, 2, 1]


def show(name, call, value):
    print(f"{name}: {call} = {value!r}")


def welch():
    result = stats.ttest_ind(TREATMENT, CONTROL, equal_var=False)
    interval = result.confidence_interval(confidence_level=0.95)
    call = "stats.ttest_ind(TREATMENT, CONTROL, equal_var=False)"
    show("welch statistic", call, float(result.statistic))
    show("welch p", call, float(result.pvalue))
    show("welch df", call, float(result.df))
    show("welch ci", call + ".confidence_interval(0.95)", (float(interval.low), float(interval.high)))

    result = stats.ttest_ind(VARYING, CONSTANT, equal_var=False)
    call = "stats.ttest_ind(VARYING, CONSTANT, equal_var=False)"
    show("welch one constant statistic", call, float(result.statistic))
    show("welch one constant p", call, float(result.pvalue))


def mann_whitney():
    for name, treatment, control in [
        ("mw", TREATMENT, CONTROL),
        ("mw tied", TIED_TREATMENT, TIED_CONTROL),
    ]:
        result = stats.mannwhitneyu(treatment, control, alternative="two-sided", method="asymptotic", use_continuity=True)
        call = f"stats.mannwhitneyu({name} treatment, control, alternative='two-sided', method='asymptotic')"
        show(f"{name} U", call, float(result.statistic))
        show(f"{name} p", call, float(result.pvalue))


def srm():
    result = stats.chisquare([5032, 4968], f_exp=[5000, 5000])
    show("srm two", "stats.chisquare([5032, 4968], f_exp=[5000, 5000])", (float(result.statistic), float(result.pvalue)))
    result = stats.chisquare([1010, 2050, 2940], f_exp=[1000, 2000, 3000])
    show("srm three", "stats.chisquare([1010, 2050, 2940], f_exp=[1000, 2000, 3000])", (float(result.statistic), float(result.pvalue)))
    result = stats.chisquare([5200, 4800], f_exp=[5000, 5000])
    show("srm mismatch", "stats.chisquare([5200, 4800], f_exp=[5000, 5000])", (float(result.statistic), float(result.pvalue)))


def mde():
    z = stats.norm.ppf(1 - 0.05 / 2) + stats.norm.ppf(0.8)
    value = z * np.sqrt(1.3**2 / 1000 + 1.5**2 / 1200)
    show("mde", "(norm.ppf(0.975) + norm.ppf(0.8)) * sqrt(1.3**2/1000 + 1.5**2/1200)", float(value))


def relative():
    c, t = np.array(CONTROL), np.array(TREATMENT)
    mc, mt = c.mean(), t.mean()
    var = t.var(ddof=1) / (len(t) * mc**2) + mt**2 * c.var(ddof=1) / (len(c) * mc**4)
    half = stats.norm.ppf(0.975) * np.sqrt(var)
    estimate = mt / mc - 1
    show("relative", "delta method with np.var(ddof=1), norm.ppf(0.975)", (float(estimate), float(estimate - half), float(estimate + half)))


def ratio_metrics():
    likes_c = np.array([u[0] for u in RATIO_CONTROL], dtype=float)
    views_c = np.array([u[1] for u in RATIO_CONTROL], dtype=float)
    likes_t = np.array([u[0] for u in RATIO_TREATMENT], dtype=float)
    views_t = np.array([u[1] for u in RATIO_TREATMENT], dtype=float)
    ctr_c = likes_c.sum() / views_c.sum()
    show("ctr control", "likes_c.sum() / views_c.sum()", float(ctr_c))

    lin_c = likes_c - ctr_c * views_c
    lin_t = likes_t - ctr_c * views_t
    result = stats.ttest_ind(lin_t, lin_c, equal_var=False)
    show("linearized", "stats.ttest_ind(likes_t - ctr_c*views_t, likes_c - ctr_c*views_c, equal_var=False)", (float(result.statistic), float(result.pvalue)))

    smooth_c = (likes_c + 5 * ctr_c) / (views_c + 5)
    smooth_t = (likes_t + 5 * ctr_c) / (views_t + 5)
    result = stats.ttest_ind(smooth_t, smooth_c, equal_var=False)
    show("smoothed", "stats.ttest_ind((likes_t + 5*ctr_c)/(views_t + 5), (likes_c + 5*ctr_c)/(views_c + 5), equal_var=False)", (float(result.statistic), float(result.pvalue)))

    def buckets(likes, views, ids):
        ids = np.array(ids)
        return [likes[ids == b].sum() / views[ids == b].sum() for b in range(3)]

    bucket_c = buckets(likes_c, views_c, BUCKETS_CONTROL)
    bucket_t = buckets(likes_t, views_t, BUCKETS_TREATMENT)
    show("bucket ratios control", "per-bucket likes.sum()/views.sum()", [float(v) for v in bucket_c])
    result = stats.ttest_ind(bucket_t, bucket_c, equal_var=False)
    show("bucketed", "stats.ttest_ind(bucket_t, bucket_c, equal_var=False)", (float(result.statistic), float(result.pvalue)))

    weights_c = np.array([1, 0, 2, 1, 3, 0, 1, 1], dtype=float)
    weights_t = np.array([0, 1, 1, 2, 1, 1, 0, 3], dtype=float)
    weighted = (weights_t * likes_t).sum() / (weights_t * views_t).sum() - (weights_c * likes_c).sum() / (weights_c * views_c).sum()
    show("weighted ratio difference", "(w_t*likes_t).sum()/(w_t*views_t).sum() - (w_c*likes_c).sum()/(w_c*views_c).sum()", float(weighted))


def quantiles():
    values = sorted([0.3, -1.2, 4.5, 2.2, 0.0, 1.1, -0.4])
    show("quantiles", "np.quantile(values, [0.025, 0.5, 0.975])", [float(v) for v in np.quantile(values, [0.025, 0.5, 0.975])])


def bootstrap_standard_error():
    # Delta-method standard error of the difference of global ratios for the
    # synthetic users of `synthetic_users` in tests.rs: views = 1 + (7 i) % 13,
    # likes = (3 i) % (views + 1) // 3 for i in 0..2000, treatment offset 1000.
    def users(offset):
        ids = np.arange(offset, offset + 2000)
        views = 1 + (7 * ids) % 13
        likes = ((3 * ids) % (views + 1)) // 3
        return likes.astype(float), views.astype(float)

    def ratio_variance(likes, views):
        n = len(likes)
        r = likes.sum() / views.sum()
        mv = views.mean()
        return ((likes - r * views) ** 2).sum() / (n - 1) / (n * mv**2)

    lc, vc = users(0)
    lt, vt = users(1000)
    se = np.sqrt(ratio_variance(lc, vc) + ratio_variance(lt, vt))
    show("delta standard error", "sqrt(var_c + var_t), var = sum((l - r v)^2)/(n-1)/(n mean(v)^2)", float(se))
    show("ratio difference", "lt.sum()/vt.sum() - lc.sum()/vc.sum()", float(lt.sum() / vt.sum() - lc.sum() / vc.sum()))


def wilson(successes=12, trials=200):
    z = stats.norm.ppf(0.975)
    p = successes / trials
    center = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2))
    show("wilson", f"Wilson score interval of {successes}/{trials}, z = norm.ppf(0.975)", (float(center - half), float(center + half)))


if __name__ == "__main__":
    print(f"SciPy {scipy.__version__}, NumPy {np.__version__}")
    welch()
    mann_whitney()
    srm()
    mde()
    relative()
    ratio_metrics()
    quantiles()
    bootstrap_standard_error()
    wilson()
