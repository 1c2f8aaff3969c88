import Foundation

/// `datetime.now().strftime(format)` for `strftime_now`, in the C locale that
/// CPython on Linux uses (English names), with glibc's `-` (no padding) flag.
enum Strftime {
    static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    static let months = ["January", "February", "March", "April", "May", "June", "July",
                         "August", "September", "October", "November", "December"]

    static func format(_ format: String, date: Date, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday, .nanosecond], from: date)
        let year = c.year ?? 1970, month = c.month ?? 1, day = c.day ?? 1
        let hour = c.hour ?? 0, minute = c.minute ?? 0, second = c.second ?? 0
        let weekday0 = (c.weekday ?? 1) - 1  // 0 = Sunday
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        let micro = (c.nanosecond ?? 0) / 1000

        func pad(_ v: Int, _ width: Int, _ noPad: Bool, _ fill: Character = "0") -> String {
            let s = String(v)
            if noPad || s.count >= width { return s }
            return String(repeating: fill, count: width - s.count) + s
        }
        let hour12 = hour % 12 == 0 ? 12 : hour % 12

        var out = ""
        let chars = Array(format)
        var i = 0
        while i < chars.count {
            let ch = chars[i]
            guard ch == "%", i + 1 < chars.count else { out.append(ch); i += 1; continue }
            var j = i + 1
            var noPad = false
            if chars[j] == "-", j + 1 < chars.count { noPad = true; j += 1 }
            let d = chars[j]
            var piece: String?
            switch d {
            case "a": piece = String(weekdays[weekday0].prefix(3))
            case "A": piece = weekdays[weekday0]
            case "b", "h": piece = String(months[month - 1].prefix(3))
            case "B": piece = months[month - 1]
            case "d": piece = pad(day, 2, noPad)
            case "e": piece = pad(day, 2, noPad, " ")
            case "m": piece = pad(month, 2, noPad)
            case "y": piece = pad(year % 100, 2, noPad)
            case "Y": piece = String(year)
            case "C": piece = pad(year / 100, 2, noPad)
            case "H": piece = pad(hour, 2, noPad)
            case "k": piece = pad(hour, 2, noPad, " ")
            case "I": piece = pad(hour12, 2, noPad)
            case "l": piece = pad(hour12, 2, noPad, " ")
            case "M": piece = pad(minute, 2, noPad)
            case "S": piece = pad(second, 2, noPad)
            case "f": piece = pad(micro, 6, false)
            case "p": piece = hour < 12 ? "AM" : "PM"
            case "P": piece = hour < 12 ? "am" : "pm"
            case "j": piece = pad(dayOfYear, 3, noPad)
            case "w": piece = String(weekday0)
            case "u": piece = String(weekday0 == 0 ? 7 : weekday0)
            case "D": piece = Strftime.format("%m/%d/%y", date: date, timeZone: timeZone)
            case "F": piece = Strftime.format("%Y-%m-%d", date: date, timeZone: timeZone)
            case "T": piece = Strftime.format("%H:%M:%S", date: date, timeZone: timeZone)
            case "R": piece = Strftime.format("%H:%M", date: date, timeZone: timeZone)
            case "r": piece = Strftime.format("%I:%M:%S %p", date: date, timeZone: timeZone)
            case "c": piece = Strftime.format("%a %b %e %H:%M:%S %Y", date: date, timeZone: timeZone)
            case "x": piece = Strftime.format("%m/%d/%y", date: date, timeZone: timeZone)
            case "X": piece = Strftime.format("%H:%M:%S", date: date, timeZone: timeZone)
            case "z", "Z": piece = ""  // naive datetime: no offset or zone name
            case "n": piece = "\n"
            case "t": piece = "\t"
            case "%": piece = "%"
            default: piece = nil
            }
            if let piece {
                out += piece
                i = j + 1
            } else {
                out.append(ch)
                i += 1
            }
        }
        return out
    }
}
