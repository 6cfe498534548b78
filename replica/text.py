"""Seeded article text built from the one real capture.

The capture is split into clauses at its punctuation, and clauses are recombined
with term substitutions and templated clauses carrying numbers, places and
people. The variation is what keeps two articles from being near-duplicates
(character 4-gram Jaccard well below 0.5); the substitution lexicon is kept
inside GB2312 so that only the deliberate `rare` insertions push an article
outside it.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from random import Random

# Real people in the capture are replaced by fictional ones: recombined clauses
# must not put invented statements in real mouths.
_REAL_PEOPLE = re.compile(r"习近平总书记|习近平|尹力|阴和俊|曾益新|殷勇|游钧")
_PERSON = "※"  # placeholder, filled with a fictional name per use
_CLAUSE_END = re.compile(r"[,。;!?:]")

PEOPLE = (
    "王建华 李志刚 张丽萍 刘海涛 陈明远 杨晓东 赵文静 黄国强 周卫平 吴振宇 "
    "徐立新 孙红梅 胡永清 朱建军 高峰 林晓燕 何志明 郭海波 马骏 罗春华"
).split()
CITIES = (
    "上海 深圳 苏州 杭州 合肥 西安 成都 武汉 天津 广州 青岛 厦门 南京 长沙 郑州 "
    "济南 宁波 无锡 常州 东莞 佛山 重庆 福州 昆明 贵阳 南昌 太原 石家庄 呼和浩特 "
    "银川 西宁 兰州 哈尔滨 长春 沈阳 大连 珠海 惠州 温州"
).split()
ORGS = (
    "中国电源学会 国家能源局 工业和信息化部 国家发展改革委 中国电力企业联合会 "
    "国家电网有限公司 南方电网公司 中国光伏行业协会 中国化学与物理电源行业协会 "
    "市发展改革委 省能源局 市工业和信息化局 电源协会秘书处 市科学技术局"
).split()
TOPICS = (
    "新型储能 光伏逆变器 氢燃料电池 功率半导体 充电基础设施 智能电网 虚拟电厂 "
    "数据中心电源 不间断电源 电力电子器件 动力电池回收 分布式光伏 海上风电 微电网 "
    "钠离子电池 固态电池 电能质量治理 高压直流输电 车网互动 绿电交易 开关电源 "
    "特种电源 模块电源 电源管理芯片"
).split()
EVENTS = (
    "推进会召开 发展论坛举行 团体标准发布 项目开工 项目并网投运 座谈会召开 "
    "专题培训班开班 年度工作会议召开 签约仪式举行 调研活动开展 成果发布会举行 "
    "专项行动启动 技术交流会举行 示范工程通过验收"
).split()
POSITIONS = "党委书记 董事长 总经理 副理事长 秘书长 总工程师 副局长 首席科学家".split()
UNITS = ("万千瓦", "兆瓦时", "座", "台", "个", "亿元", "万千瓦时")

# Terms of the capture and what they may become. Longest match wins.
SUBSTITUTIONS = {
    "北京国际科技创新中心": ["新型电力系统示范区", "储能产业创新中心", "电源产业集聚区",
                     "国家新能源技术中心", "绿色能源创新走廊", "{city}能源科技园"],
    "国际科技创新中心": ["电源产业基地", "能源技术创新中心", "储能产业园"],
    "北京": CITIES,
    "中关村": ["张江", "光谷", "南山", "滨海新区", "苏州工业园区", "合肥高新区"],
    "科技创新": ["能源创新", "技术创新", "储能创新", "绿色低碳发展", "数字化转型"],
    "人工智能": ["功率半导体", "氢能", "储能", "智能电网", "充电基础设施", "光伏逆变器"],
    "科技强国": ["能源强国", "制造强国", "质量强国"],
    "科技部": ["国家能源局", "工业和信息化部", "国家发展改革委", "中国电源学会"],
    "教育科技人才": ["技术标准人才", "产业资本人才", "电源科技人才"],
    "量子科技": ["固态电池", "柔性输电", "宽禁带半导体"],
    "新能源": ["新型储能", "分布式能源", "氢能"],
    "产业创新": ["产业升级", "装备制造", "电源产业发展"],
    "高精尖": ["高附加值", "绿色低碳", "先进制造"],
    "首都": ["本地", "区域", "行业"],
    "市委": ["市政府", "省委", "协会"],
    "2025年": ["2024年", "2025年", "2026年"],
}
_SUB_PATTERN = re.compile("|".join(sorted(map(re.escape, SUBSTITUTIONS), key=len, reverse=True)))

INNER_CREDITS = ("“识政”微信公众号", "人民网", "新华社", "中国电力报", "经济日报",
                 "中国能源报", "“学习时报”微信公众号", "光明日报", "北极星电力网")
SOURCES = ("电源协会行业党支部", "中国电源学会", "国家能源局", "中国电力企业联合会",
           "工业和信息化部", "电源协会秘书处", "中国电源产业网")
EDITORS = ("王晓明", "李娜", "张磊", "刘洋", "陈静")
TAGS = ("储能", "光伏", "电源", "新能源", "党建", "政策", "充电桩", "氢能",
        "电力电子", "碳中和", "标准", "逆变器", "UPS", "电池")

# Outside GB2312 but inside GB18030. Each rare article gets at least one
# two-byte GBK name (these make strict gb2312 decoding fail outright), and
# sometimes an em dash, a middle dot or a four-byte character.
RARE_NAMES = "张堃 王喆 刘镕 赵昇 周祎 李玥 孙赟 吴昉 陈珺 杨旻 郑犇 冯骉".split()
FOUR_BYTE_NAMES = ("周𠮷祥", "黄𠮷", "𠮷田裕")
DOT_NAMES = ("约翰·史密斯", "玛丽亚·冈萨雷斯", "汉斯·穆勒", "皮埃尔·杜邦")
EM_DASH = "——"

# Common characters a typo may turn another character into (all GB2312).
TYPO_POOL = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所"
    "民得经十三之进着等部度家电力理高自二起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事"
    "平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提"
    "直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强"
    "放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清"
    "己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许"
    "步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳"
    "便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住"
    "调满县局照参红细引听该铁价严"
)


@lru_cache(maxsize=1)
def corpus_clauses() -> tuple[str, ...]:
    """Clauses of the captured article's lede and paragraphs, people masked."""
    text = resources.files("replica").joinpath("corpus/captured.txt").read_text("utf-8")
    lines = text.splitlines()
    body = lines[3:next(i for i, line in enumerate(lines) if line.startswith("编辑:"))]
    clauses = []
    for line in body:
        line = line.removeprefix("导语:")
        line = re.sub(r"\(来源:[^()]*\)$", "", line)
        line = _REAL_PEOPLE.sub(lambda m: "党中央" if "总书记" in m.group() else _PERSON, line)
        for clause in _CLAUSE_END.split(line):
            clause = clause.strip()
            if 4 <= len(clause) <= 40:
                clauses.append(clause)
    return tuple(clauses)


class TextMaker:
    """All text of one site, drawn from one seeded RNG."""

    def __init__(self, rng: Random):
        self.rng = rng

    def _fill(self, text: str) -> str:
        text = text.replace(_PERSON, self.rng.choice(PEOPLE))
        return text.replace("{city}", self.rng.choice(CITIES))

    def _vary(self, clause: str) -> str:
        def swap(match: re.Match) -> str:
            if self.rng.random() < 0.25:
                return match.group()
            return self.rng.choice(SUBSTITUTIONS[match.group()])
        return self._fill(_SUB_PATTERN.sub(swap, clause))

    def _templated_clause(self) -> str:
        r = self.rng
        choices = (
            lambda: f"{r.randint(1, 12)}月{r.randint(1, 28)}日上午",
            lambda: f"{r.choice(CITIES)}{r.choice(TOPICS)}{r.choice(EVENTS)}",
            lambda: f"截至{r.randint(1, 12)}月底",
            lambda: f"{r.choice(CITIES)}累计建成{r.choice(TOPICS)}项目{r.randint(3, 980)}{r.choice(UNITS)}",
            lambda: f"同比增长{r.randint(2, 95)}.{r.randint(0, 9)}%",
            lambda: f"总投资约{r.randint(2, 400)}亿元",
            lambda: f"{r.choice(ORGS)}有关负责同志介绍",
            lambda: f"{r.choice(POSITIONS)}{r.choice(PEOPLE)}表示",
            lambda: f"预计年发电量可达{r.randint(100, 99999)}万千瓦时",
            lambda: f"{r.choice(ORGS)}将会同{r.choice(ORGS)}推动{r.choice(TOPICS)}规模化应用",
            lambda: f"全年完成{r.choice(TOPICS)}装机{r.randint(10, 9000)}万千瓦",
            lambda: f"{r.choice(CITIES)}已有{r.randint(12, 860)}家{r.choice(TOPICS)}企业入驻",
        )
        return r.choice(choices)()

    def clause(self) -> str:
        if self.rng.random() < 0.45:
            return self._templated_clause()
        return self._vary(self.rng.choice(corpus_clauses()))

    def sentence(self) -> str:
        return ",".join(self.clause() for _ in range(self.rng.randint(2, 4))) + "。"

    def paragraph(self) -> str:
        return "".join(self.sentence() for _ in range(self.rng.randint(2, 6)))

    def lede(self) -> str:
        lede = self.sentence()
        if len(lede) < 60:
            lede += self.sentence()
        return lede

    def title(self) -> str:
        """A 10-40 character headline in one of the portal's usual shapes."""
        r = self.rng
        while True:
            shapes = (
                lambda: f"{r.choice(CITIES)}{r.choice(TOPICS)}{r.choice(EVENTS)}",
                lambda: f"{r.choice(ORGS)}召开{r.choice(TOPICS)}工作推进会",
                lambda: f"{r.choice(CITIES)}{r.choice(TOPICS)}{r.choice(EVENTS)},"
                        f"{r.choice(PEOPLE)}要求{self._vary(r.choice(corpus_clauses()))}",
                lambda: f"{r.randint(2024, 2026)}年{r.choice(CITIES)}{r.choice(TOPICS)}"
                        f"装机同比增长{r.randint(2, 95)}%",
                lambda: f"{r.choice(TOPICS)}:{self._vary(r.choice(corpus_clauses()))}",
                lambda: self._vary(r.choice(corpus_clauses())),
            )
            title = r.choice(shapes)()
            if 10 <= len(title) <= 40:
                return title

    def rare_clause(self) -> str:
        """A clause that cannot be written in GB2312 (always a GBK-only name)."""
        r = self.rng
        name = r.choice(FOUR_BYTE_NAMES) if r.random() < 0.3 else r.choice(RARE_NAMES)
        clause = f"{r.choice(POSITIONS)}{name}表示"
        if r.random() < 0.4:
            clause += f",国际电工委员会专家{r.choice(DOT_NAMES)}介绍"
        if r.random() < 0.5:
            clause = f"{self.clause()}{EM_DASH}{clause}"
        return clause

    def insert_rare(self, paragraph: str) -> str:
        """Put a rare clause at a sentence boundary of the paragraph."""
        sentences = [s for s in paragraph.split("。") if s]
        at = self.rng.randint(0, len(sentences))
        sentences.insert(at, self.rare_clause())
        return "。".join(sentences) + "。"

    def typo_char(self, old: str) -> str:
        while True:
            new = self.rng.choice(TYPO_POOL)
            if new != old:
                return new
